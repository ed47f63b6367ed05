//! The working memory of one Argon2 hash: mapped from the kernel for that hash, unmapped after.
//!
//! Why not the allocator: Argon2id at the default cost fills 19 MiB. glibc's malloc serves a
//! request that large with `mmap` only while it is above its *dynamic* mmap threshold, and the
//! first such block freed raises the threshold to its size (up to 32 MiB). From then on every
//! hash takes its 19 MiB from a malloc arena, and a freed block stays in the arena: each hashing
//! thread (and each arena it lands in when another thread holds its own) keeps one for good.
//! The server grew to hundreds of MB after a few dozen logins and never gave it back.
//!
//! An explicit anonymous mapping per hash is returned to the kernel the moment it is unmapped,
//! whatever the allocator does. The other ways out were worse: `mallopt(M_MMAP_THRESHOLD)`
//! changes the policy of every allocation in the process (and only on glibc), `malloc_trim`
//! after each hash walks every arena, and one long-lived buffer per thread would hold 19 MiB per
//! hashing thread forever (`madvise(MADV_DONTNEED)` would give its pages back, but a fresh
//! mapping does the same with less to get wrong, and also fits a stored hash with other costs).
//! The price is the page faults of touching fresh pages, about a millisecond per hash against
//! the tens of milliseconds the hash itself takes.

use std::io;
use std::ptr::NonNull;

use argon2::Block;

/// Most Argon2 memory one hash may map, in KiB (one block is 1 KiB): 64 MiB, RFC 9106's second
/// recommended setting and a bit over three times the default cost's 19 MiB. A stored hash
/// asking for more (edited by hand, from a tool with extreme settings, or replicated from a
/// hostile node in cluster mode) is refused rather than allowed to map that much per login on
/// each hashing thread. Not configurable: raise it in the code together with the cost.
pub const MAX_KIB: usize = 64 * 1024;

/// `len` Argon2 blocks in an anonymous private mapping, zeroed by the kernel and unmapped on
/// drop.
pub struct Scratch {
    blocks: NonNull<Block>,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone (no aliases are handed out beyond `&mut self`
// borrows), so moving it to another thread is like moving a `Vec<Block>`.
unsafe impl Send for Scratch {}

impl Scratch {
    /// Maps `len` zeroed blocks (at most [`MAX_KIB`]).
    pub fn new(len: usize) -> io::Result<Scratch> {
        if len == 0 || len > MAX_KIB {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{len} KiB of Argon2 memory is outside 1..={MAX_KIB}"),
            ));
        }
        // SAFETY: a fresh anonymous private mapping with no address hint touches no existing
        // memory; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len * Block::SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // A mapping is page aligned, more than a block's 64-byte alignment.
        let blocks = NonNull::new(ptr.cast::<Block>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Scratch { blocks, len })
    }
}

impl Scratch {
    /// How many blocks it holds.
    pub fn len(&self) -> usize {
        self.len
    }
}

impl AsMut<[Block]> for Scratch {
    fn as_mut(&mut self) -> &mut [Block] {
        // SAFETY: the mapping holds `len` blocks, is aligned, zero-initialised by the kernel
        // (all-zero bytes are a valid `Block`, an array of integers), and is borrowed mutably
        // through `self` only.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_ptr(), self.len) }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, which nothing borrows any more.
        unsafe {
            libc::munmap(self.blocks.as_ptr().cast(), self.len * Block::SIZE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_zeroed_writable_blocks_and_refuses_silly_sizes() {
        let mut scratch = Scratch::new(19 * 1024).unwrap();
        let blocks = scratch.as_mut();
        assert_eq!(blocks.len(), 19 * 1024);
        assert!(blocks.iter().all(|b| b.as_ref().iter().all(|w| *w == 0)));
        blocks[19 * 1024 - 1].as_mut()[127] = 7;
        assert_eq!(blocks[19 * 1024 - 1].as_ref()[127], 7);
        assert!(Scratch::new(0).is_err());
        assert!(Scratch::new(MAX_KIB + 1).is_err());
    }
}
