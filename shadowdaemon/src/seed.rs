//! `shadowdaemon seed DOMID`: hands a domain its boot seed before it first
//! runs (`xl create -p`, this, `xl unpause`: scripts/xl-create-seeded).
//!
//! The guest kernel's secrets (event-id keys, page-capability tags, the
//! network stack's secret) need entropy the guest cannot make itself where
//! the CPU offers no RDSEED or RDRAND. Dom0 has its kernel's CSPRNG: 32 bytes
//! of it go, as 64 hex digits (`xen::seed`, the format the guest parses),
//! into the domain's `ethos/seed`. The node is made empty first and given
//! its permissions (dom0 owns it; the domain alone may read it, and write it
//! so that it can remove it; no other domain may read it), and only then
//! filled, so the seed is never in a node with other permissions. The guest
//! reads it once at boot, before drawing any secret, and removes it.

use std::fmt;
use std::io::{Read, Write};

use crate::xen::xenstore::{Xenstore, XsError};

/// Why a domain got no seed.
#[derive(Debug)]
pub enum SeedError {
    /// xenstored knows no such domain (never created, or already gone).
    NoDomain(u16),
    /// dom0's kernel gave no random bytes.
    Random(String),
    /// A xenstore step failed (which, and why).
    Store(&'static str, XsError),
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeedError::NoDomain(d) => write!(f, "no domain {d} in xenstore"),
            SeedError::Random(e) => write!(f, "no random bytes from dom0's kernel: {e}"),
            SeedError::Store(step, e) => write!(f, "{step}: {e}"),
        }
    }
}

/// The node's full path for domain `domid`.
pub fn seed_path(domid: u16) -> String {
    format!("/local/domain/{domid}/{}", ::xen::seed::PATH)
}

/// `seed` as the node holds it: lowercase hex, no terminator.
pub fn encode(seed: &[u8; ::xen::seed::BYTES]) -> String {
    seed.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `seed` into domain `domid`'s node, with its permissions set
/// before it holds anything. Returns the node's path.
pub fn hand_seed<T: Read + Write>(
    xs: &mut Xenstore<T>,
    domid: u16,
    seed: &[u8; ::xen::seed::BYTES],
) -> Result<String, SeedError> {
    if !xs
        .is_domain_introduced(domid)
        .map_err(|e| SeedError::Store("is the domain introduced", e))?
    {
        return Err(SeedError::NoDomain(domid));
    }
    let path = seed_path(domid);
    xs.write(&path, b"")
        .map_err(|e| SeedError::Store("create the node", e))?;
    // `n0`: dom0 owns it and no domain but those named may read it;
    // `bD`: the domain may read it and write it (to remove it).
    let guest = format!("b{domid}");
    if let Err(e) = xs.set_perms(&path, &["n0", &guest]) {
        let _ = xs.rm(&path);
        return Err(SeedError::Store("set the node's permissions", e));
    }
    xs.write(&path, encode(seed).as_bytes())
        .map_err(|e| SeedError::Store("write the seed", e))?;
    Ok(path)
}

/// 32 bytes from dom0's kernel CSPRNG (getrandom(2)).
pub fn fresh_seed() -> Result<[u8; ::xen::seed::BYTES], SeedError> {
    let mut seed = [0u8; ::xen::seed::BYTES];
    getrandom::fill(&mut seed).map_err(|e| SeedError::Random(e.to_string()))?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::fakexs::{client, Store};
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_guest_parses_what_dom0_writes() {
        for _ in 0..100 {
            let seed = fresh_seed().unwrap();
            assert_eq!(::xen::seed::parse(encode(&seed).as_bytes()), Ok(seed));
        }
    }

    #[test]
    fn writes_the_seed_readable_by_the_domain_alone() {
        let store = Arc::new(Mutex::new(Store::default()));
        store.lock().unwrap().domain(7, "web", "u-1");
        let mut xs = client(store.clone());
        let seed = [0xa5; 32];
        let path = hand_seed(&mut xs, 7, &seed).unwrap();
        assert_eq!(path, "/local/domain/7/ethos/seed");
        let st = store.lock().unwrap();
        let (value, perms) = st.nodes.get(&path).expect("the node");
        assert_eq!(value, "a5".repeat(32).as_bytes());
        // Owner dom0 with no access for others; domain 7 reads and writes.
        assert_eq!(perms, b"n0\0b7\0");
    }

    #[test]
    fn refuses_a_domain_xenstore_does_not_know() {
        let store = Arc::new(Mutex::new(Store::default()));
        let mut xs = client(store.clone());
        let err = hand_seed(&mut xs, 9, &[1; 32]).unwrap_err();
        assert!(matches!(err, SeedError::NoDomain(9)), "{err}");
        assert!(store.lock().unwrap().nodes.is_empty(), "nothing written");
    }

    #[test]
    fn a_failing_xenstore_writes_no_seed() {
        let store = Arc::new(Mutex::new(Store::default()));
        store.lock().unwrap().domain(4, "x", "u-4");
        let mut xs = client(store.clone());
        store.lock().unwrap().fail_with = Some("EACCES");
        let err = hand_seed(&mut xs, 4, &[1; 32]).unwrap_err();
        assert!(err.to_string().contains("EACCES"), "{err}");
        assert!(!store
            .lock()
            .unwrap()
            .nodes
            .contains_key("/local/domain/4/ethos/seed"));
    }
}
