//! Password hashing with Argon2id, on threads of its own.
//!
//! Argon2id is slow and memory-hard on purpose, which is exactly what must not run on an executor
//! thread. Two dedicated threads take jobs from a bounded queue: that bounds both the CPU and the
//! memory (19 MiB per hash in flight) that a crowd of logins can cost, whatever the crowd's size.
//!
//! A crowd of strangers' guesses fills that queue, though (each address that has not failed
//! against an account gets one prompt check, `limits/login.rs`): 1,500 addresses guessing at
//! once kept an owner waiting 11 s for a check, and a few thousand would keep it past the name
//! deadline. So the checks of an owner's known address ([`Hasher::verify_first`]) have a queue of
//! their own, which the threads always serve first: strangers cannot be at a known address, so
//! they cannot fill it.
//!
//! Cost parameters: the `argon2` crate's defaults, which are OWASP's recommendation for Argon2id:
//! m = 19 MiB, t = 2 passes, p = 1 lane, version 0x13, a 16-byte random salt from the OS. The
//! parameters are stored in each hash (PHC string form), so raising them later keeps old hashes
//! verifiable.
//!
//! The 19 MiB of each hash is mapped for that hash and unmapped after it ([`Scratch`]), so the
//! memory of hashes in flight is all the memory hashing ever holds: the crate's own
//! `hash_password` would take it from malloc, which keeps it (see `scratch.rs`). So this module
//! builds and checks the PHC string itself around `hash_password_into_with_memory`, exactly as
//! the crate's `PasswordHasher` and `PasswordVerifier` do.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_channel::{Receiver, Sender};
use log::error;
use smol::future;

use super::password::Secret;
use super::scratch::{Scratch, MAX_KIB};

/// Hashing threads. Two: a login takes tens of milliseconds, and more threads would only take
/// cores from the chat.
const THREADS: usize = 2;

/// Jobs that may wait; beyond this a login waits to be queued.
const QUEUE: usize = 64;

/// The most work one stored hash may ask for: its memory in KiB times its passes. 64 MiB times 3
/// passes (RFC 9106's second recommended setting), five times the default cost (19 MiB times 2).
/// Memory alone is bounded by [`MAX_KIB`]; without this a stored hash with `t=4294967295` would
/// keep a hashing thread busy for days at every login to its account. Not configurable, like
/// [`MAX_KIB`].
const MAX_WORK: u64 = 64 * 1024 * 3;

enum Job {
    Hash(Secret, Sender<Option<String>>),
    Verify(Secret, String, Sender<bool>),
}

/// A handle on the hashing threads. They stop when every handle is gone.
#[derive(Clone)]
pub struct Hasher {
    jobs: Sender<Job>,
    /// The owners' checks, served before any job in `jobs`.
    first: Sender<Job>,
}

/// The two queues as a hashing thread sees them.
struct Queues {
    first: Receiver<Job>,
    jobs: Receiver<Job>,
}

impl Queues {
    /// The next job without waiting, an owner's first.
    fn try_next(&self) -> Option<Job> {
        self.first.try_recv().or_else(|_| self.jobs.try_recv()).ok()
    }

    /// The next job, an owner's first, waiting for one; `None` once the handles are gone.
    fn next(&self) -> Option<Job> {
        if let Some(job) = self.try_next() {
            return Some(job);
        }
        // `or` polls the owners' queue first, so it wins when both have a job.
        future::block_on(future::or(self.first.recv(), self.jobs.recv())).ok()
    }
}

impl Hasher {
    /// Starts the hashing threads.
    pub fn start() -> std::io::Result<Hasher> {
        Hasher::start_with(THREADS)
    }

    fn start_with(threads: usize) -> std::io::Result<Hasher> {
        let (jobs, jobs_rx) = async_channel::bounded(QUEUE);
        let (first, first_rx) = async_channel::bounded(QUEUE);
        for n in 0..threads {
            let queues = Queues {
                first: first_rx.clone(),
                jobs: jobs_rx.clone(),
            };
            std::thread::Builder::new()
                .name(format!("hasher-{n}"))
                .spawn(move || run(&queues))?;
        }
        Ok(Hasher { jobs, first })
    }

    /// The PHC string of a new hash of `password`; `None` if hashing failed (logged).
    pub async fn hash(&self, password: Secret) -> Option<String> {
        let (reply, answer) = async_channel::bounded(1);
        self.jobs.send(Job::Hash(password, reply)).await.ok()?;
        answer.recv().await.ok().flatten()
    }

    /// Whether `password` matches the stored hash.
    pub async fn verify(&self, password: Secret, hash: String) -> bool {
        Hasher::check(&self.jobs, password, hash).await
    }

    /// [`Hasher::verify`] for an address the account's owner has logged in from: checked before
    /// anything queued by [`Hasher::verify`] or [`Hasher::hash`], so a crowd of guesses cannot
    /// keep the owner waiting.
    pub async fn verify_first(&self, password: Secret, hash: String) -> bool {
        Hasher::check(&self.first, password, hash).await
    }

    async fn check(queue: &Sender<Job>, password: Secret, hash: String) -> bool {
        let (reply, answer) = async_channel::bounded(1);
        if queue
            .send(Job::Verify(password, hash, reply))
            .await
            .is_err()
        {
            return false;
        }
        answer.recv().await.unwrap_or(false)
    }
}

/// A hashing thread. Its Argon2 memory is kept from one job to the next only while jobs are
/// queued back to back (a burst of logins, a crowd of guesses: mapping it afresh costs each hash
/// about half as much again in page faults), and unmapped before the thread answers a job with
/// nothing queued behind it, so an idle server holds none and the answer that ends a burst
/// comes after the memory is back.
fn run(queues: &Queues) {
    let mut scratch: Option<Scratch> = None;
    let mut queued: Option<Job> = None;
    loop {
        let job = match queued.take().or_else(|| queues.next()) {
            Some(job) => job,
            None => return,
        };
        let answer = match job {
            Job::Hash(password, reply) => Answer::Hash(hash_with(&password, &mut scratch), reply),
            Job::Verify(password, stored, reply) => {
                Answer::Verify(verify_with(&password, &stored, &mut scratch), reply)
            }
        };
        queued = queues.try_next();
        if queued.is_none() {
            scratch = None;
        }
        match answer {
            Answer::Hash(hash, reply) => {
                let _ = reply.try_send(hash);
            }
            Answer::Verify(right, reply) => {
                let _ = reply.try_send(right);
            }
        }
    }
}

/// A job's result, held until the thread has decided what to do with its memory.
enum Answer {
    Hash(Option<String>, Sender<Option<String>>),
    Verify(bool, Sender<bool>),
}

/// Hashes with a fresh salt (never logs the password, only the error kind).
pub fn hash(password: &Secret) -> Option<String> {
    hash_with(password, &mut None)
}

/// Checks a password against a PHC string; an unreadable hash never matches.
pub fn verify(password: &Secret, stored: &str) -> bool {
    verify_with(password, stored, &mut None)
}

/// [`hash`], in `scratch`'s memory if it fits (mapping it otherwise).
fn hash_with(password: &Secret, scratch: &mut Option<Scratch>) -> Option<String> {
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let hashed = (|| {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let output = compute(
            &argon2,
            password,
            salt.as_salt(),
            Params::DEFAULT_OUTPUT_LEN,
            scratch,
        )?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok::<_, String>(phc.to_string())
    })();
    match hashed {
        Ok(phc) => Some(phc),
        Err(e) => {
            error!("password hashing failed: {e}");
            None
        }
    }
}

/// [`verify`], in `scratch`'s memory if it fits (mapping it otherwise).
fn verify_with(password: &Secret, stored: &str, scratch: &mut Option<Scratch>) -> bool {
    let checked = (|| {
        let phc = PasswordHash::new(stored).map_err(|e| e.to_string())?;
        let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
            return Err("no salt or no hash".to_owned());
        };
        let algorithm = Algorithm::try_from(phc.algorithm).map_err(|e| e.to_string())?;
        let version = match phc.version {
            Some(v) => Version::try_from(v).map_err(|e| e.to_string())?,
            None => Version::default(),
        };
        let params = Params::try_from(&phc).map_err(|e| e.to_string())?;
        let argon2 = Argon2::new(algorithm, version, params);
        let computed = compute(&argon2, password, salt, expected.len(), scratch)?;
        // `Output`'s equality is constant-time, as the crate's own verifier relies on.
        Ok(computed == expected)
    })();
    checked.unwrap_or_else(|e| {
        error!("a stored password hash is unreadable or unusable: {e}");
        false
    })
}

/// Runs Argon2 in `scratch`, mapping memory of the size it needs first unless `scratch` holds
/// exactly that already (every block is written before it is read, so reuse is safe).
fn compute(
    argon2: &Argon2<'_>,
    password: &Secret,
    salt: argon2::password_hash::Salt<'_>,
    output_len: usize,
    scratch: &mut Option<Scratch>,
) -> Result<Output, String> {
    let mut salt_bytes = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| e.to_string())?;
    let blocks = argon2.params().block_count();
    if blocks > MAX_KIB {
        return Err(format!(
            "the hash asks for {blocks} KiB of memory, more than {MAX_KIB}"
        ));
    }
    let passes = argon2.params().t_cost();
    let work = u64::try_from(blocks).unwrap_or(u64::MAX) * u64::from(passes);
    if work > MAX_WORK {
        return Err(format!(
            "the hash asks for {passes} passes over {blocks} KiB, more work than {MAX_WORK} KiB \
             passes"
        ));
    }
    let memory = match scratch {
        Some(memory) if memory.len() == blocks => memory,
        _ => scratch.insert(Scratch::new(blocks).map_err(|e| format!("cannot map memory: {e}"))?),
    };
    Output::init_with(output_len, |out| {
        argon2
            .hash_password_into_with_memory(password.expose().as_bytes(), salt, out, &mut *memory)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;

    /// A hash of `password` at a low cost (1 MiB, one pass), made by the crate's own hasher.
    fn cheap_hash(password: &[u8], salt: &SaltString) -> String {
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(password, salt)
        .unwrap()
        .to_string()
    }

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

    /// Hashes made by the crate's own `PasswordHasher` (every hash stored before this module
    /// built the PHC string itself) verify here, and the other way round: the two forms agree.
    #[test]
    fn agrees_with_the_crates_own_hasher_and_verifier() {
        use argon2::password_hash::PasswordVerifier;
        let secret = Secret::new("correct horse".into());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify(&secret, &theirs));
        assert!(!verify(&Secret::new("correct horsf".into()), &theirs));
        let ours = hash(&secret).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        // Other costs stored in a hash are honoured; absurd ones are refused, not mapped.
        let cheap = cheap_hash(b"correct horse", &salt);
        assert!(cheap.contains("m=1024,t=1,p=1"), "{cheap}");
        assert!(verify(&secret, &cheap));
        let greedy = cheap.replace("m=1024", "m=4194304");
        assert!(!verify(&secret, &greedy));
    }

    /// A stored hash asking for more work than [`MAX_WORK`] is refused before any hashing, even
    /// with the right password: memory is bounded by [`MAX_KIB`], and the passes are too, or a
    /// hostile hash (`t=4294967295`) would hold a hashing thread for days at each login.
    #[test]
    fn a_stored_hash_asking_for_too_much_work_is_refused() {
        let secret = Secret::new("correct horse".into());
        let salt = SaltString::generate(&mut OsRng);
        // The least memory there is (8 KiB), with just more passes than allowed: cheap to make
        // here, and right for this password.
        let passes = u32::try_from(MAX_WORK / 8 + 1).unwrap();
        let costly = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, passes, 1, None).unwrap(),
        )
        .hash_password(b"correct horse", &salt)
        .unwrap()
        .to_string();
        assert!(!verify(&secret, &costly), "{costly}");
        // The most memory allowed, once, is still checked; more memory is not.
        let within = costly.replace(&format!("m=8,t={passes}"), "m=65536,t=3");
        assert!(within.contains("m=65536,t=3"), "{within}");
        let mut scratch = None;
        assert!(!verify_with(&secret, &within, &mut scratch));
        assert_eq!(
            scratch.as_ref().map(Scratch::len),
            Some(MAX_KIB),
            "mapped and used"
        );
        let over = costly.replace(&format!("m=8,t={passes}"), "m=65537,t=1");
        assert!(!verify_with(&secret, &over, &mut None));
    }

    /// The owner's check goes before a queue of strangers' guesses: with one thread busy on a
    /// guess and more queued behind it, the owner's answer comes before theirs.
    #[test]
    fn the_owners_check_goes_before_the_queue() {
        let hasher = Hasher::start_with(1).unwrap();
        let secret = Secret::new("correct horse".into());
        // At the default cost, so each guess keeps the thread busy while the others queue.
        let stored = hash(&secret).unwrap();
        let guesses: Vec<Receiver<bool>> = (0..3)
            .map(|_| {
                let (reply, answer) = async_channel::bounded(1);
                let guess = Job::Verify(Secret::new("a guess".into()), stored.clone(), reply);
                hasher.jobs.try_send(guess).unwrap();
                answer
            })
            .collect();
        assert!(future::block_on(hasher.verify_first(secret, stored)));
        let answered = guesses.iter().filter(|g| !g.is_empty()).count();
        assert!(
            answered < guesses.len(),
            "the owner waited for all {answered} guesses queued before it"
        );
        for guess in guesses {
            assert_eq!(guess.recv_blocking(), Ok(false));
        }
    }

    /// Memory kept from one hash for the next (as a busy hashing thread does) gives the same
    /// answers as fresh memory, also across costs.
    #[test]
    fn reused_memory_gives_the_same_answers() {
        let secret = Secret::new("correct horse".into());
        let mut scratch = None;
        let a = hash_with(&secret, &mut scratch).unwrap();
        assert!(scratch.is_some(), "the memory is kept for the caller");
        assert!(verify_with(&secret, &a, &mut scratch));
        assert!(!verify_with(&Secret::new("wrong".into()), &a, &mut scratch));
        let b = hash_with(&secret, &mut scratch).unwrap();
        assert!(verify(&secret, &b));
        let salt = SaltString::generate(&mut OsRng);
        let cheap = cheap_hash(b"correct horse", &salt);
        assert!(verify_with(&secret, &cheap, &mut scratch));
        assert!(verify_with(&secret, &a, &mut scratch));
    }
}
