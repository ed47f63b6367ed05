//! Password hashing with Argon2id, on threads of its own.
//!
//! Argon2id is slow and memory-hard on purpose, which is exactly what must not run on an executor
//! thread. Two dedicated threads take jobs from a bounded queue: that bounds both the CPU and the
//! memory (19 MiB per hash in flight) that a crowd of logins can cost, whatever the crowd's size.
//!
//! Cost parameters: the `argon2` crate's defaults, which are OWASP's recommendation for Argon2id:
//! m = 19 MiB, t = 2 passes, p = 1 lane, version 0x13, a 16-byte random salt from the OS. The
//! parameters are stored in each hash (PHC string form), so raising them later keeps old hashes
//! verifiable.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use async_channel::{Receiver, Sender};
use log::error;

use super::password::Secret;

/// Hashing threads. Two: a login takes tens of milliseconds, and more threads would only take
/// cores from the chat.
const THREADS: usize = 2;

/// Jobs that may wait; beyond this a login waits to be queued.
const QUEUE: usize = 64;

enum Job {
    Hash(Secret, Sender<Option<String>>),
    Verify(Secret, String, Sender<bool>),
}

/// A handle on the hashing threads. They stop when every handle is gone.
#[derive(Clone)]
pub struct Hasher {
    jobs: Sender<Job>,
}

impl Hasher {
    /// Starts the hashing threads.
    pub fn start() -> std::io::Result<Hasher> {
        let (jobs, rx) = async_channel::bounded(QUEUE);
        for n in 0..THREADS {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("hasher-{n}"))
                .spawn(move || run(&rx))?;
        }
        Ok(Hasher { jobs })
    }

    /// The PHC string of a new hash of `password`; `None` if hashing failed (logged).
    pub async fn hash(&self, password: Secret) -> Option<String> {
        let (reply, answer) = async_channel::bounded(1);
        self.jobs.send(Job::Hash(password, reply)).await.ok()?;
        answer.recv().await.ok().flatten()
    }

    /// Whether `password` matches the stored hash.
    pub async fn verify(&self, password: Secret, hash: String) -> bool {
        let (reply, answer) = async_channel::bounded(1);
        if self
            .jobs
            .send(Job::Verify(password, hash, reply))
            .await
            .is_err()
        {
            return false;
        }
        answer.recv().await.unwrap_or(false)
    }
}

fn run(jobs: &Receiver<Job>) {
    while let Ok(job) = jobs.recv_blocking() {
        match job {
            Job::Hash(password, reply) => {
                let _ = reply.try_send(hash(&password));
            }
            Job::Verify(password, stored, reply) => {
                let _ = reply.try_send(verify(&password, &stored));
            }
        }
    }
}

/// Hashes with a fresh salt (never logs the password, only the error kind).
pub fn hash(password: &Secret) -> Option<String> {
    let salt = SaltString::generate(&mut OsRng);
    match Argon2::default().hash_password(password.expose().as_bytes(), &salt) {
        Ok(hash) => Some(hash.to_string()),
        Err(e) => {
            error!("password hashing failed: {e}");
            None
        }
    }
}

/// Checks a password against a PHC string; an unreadable hash never matches.
pub fn verify(password: &Secret, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            error!("a stored password hash is unreadable: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let secret = Secret::new("correct horse".into());
        let a = hash(&secret).unwrap();
        let b = hash(&secret).unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(verify(&secret, &a));
        assert!(!verify(&Secret::new("wrong horse".into()), &a));
        assert!(!verify(&secret, "not a hash"));
    }
}
