//! Tests only: a xenstored on the far end of a socket pair, over an in-memory
//! tree, answering what the daemon asks (read, directory, permissions, whether a
//! domain is introduced, watches, and dom0's own writes, removals and permission
//! changes), so the daemon's decisions about domains can be tested without Xen.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread;

use super::xenstore::{encode, read_message, MsgType, Xenstore};

/// The tree: each node's value and permissions (`n0\0r5\0` as on the wire).
#[derive(Default)]
pub struct Store {
    /// Nodes by full path.
    pub nodes: BTreeMap<String, (Vec<u8>, Vec<u8>)>,
    /// Domains xenstored knows.
    pub introduced: BTreeSet<u16>,
    /// Answer every request with this error instead (e.g. `EACCES`).
    pub fail_with: Option<&'static str>,
    /// Requests asked, by their first argument (a path, a domid): what the daemon's
    /// work cost xenstored, counted.
    pub asked: BTreeMap<String, u64>,
    /// Watches set, as (path, token), and the server's end to fire them on.
    pub watches: BTreeSet<(String, String)>,
    events_to: Option<UnixStream>,
    /// Watch events fired, by token.
    pub fired: BTreeMap<String, u64>,
}

impl Store {
    /// Requests asked about domain `domid` (its nodes, or whether it is introduced).
    pub fn asked_about(&self, domid: u16) -> u64 {
        let home = format!("/local/domain/{domid}");
        self.asked
            .iter()
            .filter(|(arg, _)| {
                *arg == &domid.to_string() || *arg == &home || arg.starts_with(&format!("{home}/"))
            })
            .map(|(_, n)| n)
            .sum()
    }
}

impl Store {
    /// Sets a node owned by dom0, readable by `reader`.
    pub fn put(&mut self, path: &str, value: &str, reader: u16) {
        self.put_with_perms(path, value, &format!("n0\0r{reader}\0"));
    }

    /// Sets a node with the given permissions.
    pub fn put_with_perms(&mut self, path: &str, value: &str, perms: &str) {
        self.nodes.insert(
            path.to_string(),
            (value.as_bytes().to_vec(), perms.as_bytes().to_vec()),
        );
    }

    /// A domain as `xl create` leaves it: introduced, with a dom0-owned `name`
    /// and `vm`.
    pub fn domain(&mut self, domid: u16, name: &str, uuid: &str) {
        self.introduced.insert(domid);
        self.put(&format!("/local/domain/{domid}/name"), name, domid);
        self.put(
            &format!("/local/domain/{domid}/vm"),
            &format!("/vm/{uuid}"),
            domid,
        );
    }

    /// Writes a node as a domain (or the toolstack) would, firing the watches on it
    /// or above it, as xenstored does.
    pub fn write(&mut self, path: &str, value: &str, owner: u16) {
        self.put_with_perms(path, value, &format!("n{owner}\0"));
        self.fire(path);
    }

    /// Fires the watches on `path` or above it (or on a special path such as
    /// `@releaseDomain`).
    pub fn fire(&mut self, path: &str) {
        let hits: Vec<String> = self
            .watches
            .iter()
            .filter(|(w, _)| {
                path == w
                    || path
                        .strip_prefix(w.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
            .map(|(_, t)| t.clone())
            .collect();
        for token in hits {
            self.send_event(path, &token);
        }
    }

    fn send_event(&mut self, path: &str, token: &str) {
        *self.fired.entry(token.to_string()).or_default() += 1;
        if let Some(s) = self.events_to.as_mut() {
            let payload = format!("{path}\0{token}\0");
            let _ = s.write_all(&encode(MsgType::WatchEvent, 0, 0, payload.as_bytes()).unwrap());
        }
    }

    /// Dom0 writes a node: a new one inherits the permissions of its nearest
    /// ancestor, as xenstored's nodes inherit their parent's.
    fn dom0_write(&mut self, path: &str, value: &[u8]) {
        let perms = match self.nodes.get(path) {
            Some((_, p)) => p.clone(),
            None => {
                let mut at = path;
                loop {
                    match at.rsplit_once('/') {
                        Some((parent, _)) if !parent.is_empty() => {
                            if let Some((_, p)) = self.nodes.get(parent) {
                                break p.clone();
                            }
                            at = parent;
                        }
                        _ => break b"n0\0".to_vec(),
                    }
                }
            }
        };
        self.nodes.insert(path.to_string(), (value.to_vec(), perms));
        self.fire(path);
    }

    /// Removes a node and everything below it; whether there was one.
    fn remove(&mut self, path: &str) -> bool {
        let below = format!("{path}/");
        let before = self.nodes.len();
        self.nodes
            .retain(|k, _| k != path && !k.starts_with(&below));
        let removed = self.nodes.len() != before;
        if removed {
            self.fire(path);
        }
        removed
    }

    fn children(&self, path: &str) -> Option<Vec<String>> {
        let prefix = format!("{path}/");
        let names: BTreeSet<String> = self
            .nodes
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('/').next())
            .map(str::to_string)
            .collect();
        (!names.is_empty() || self.nodes.contains_key(path)).then(|| names.into_iter().collect())
    }
}

fn reply(s: &mut UnixStream, kind: MsgType, req_id: u32, payload: &[u8]) {
    let _ = s.write_all(&encode(kind, req_id, 0, payload).unwrap());
}

/// A client of a fake xenstored serving `store` on a thread of its own.
pub fn client(store: Arc<Mutex<Store>>) -> Xenstore<UnixStream> {
    let (client, mut server) = UnixStream::pair().unwrap();
    // Events go out under the store's lock, as replies do, so they never interleave.
    store.lock().unwrap().events_to = Some(server.try_clone().unwrap());
    thread::spawn(move || {
        while let Ok(msg) = read_message(&mut server) {
            let (kind, id) = (msg.header.kind, msg.header.req_id);
            let arg = String::from_utf8_lossy(msg.payload.split(|&b| b == 0).next().unwrap())
                .into_owned();
            let mut st = store.lock().unwrap();
            *st.asked.entry(arg.clone()).or_default() += 1;
            if let Some(e) = st.fail_with {
                reply(&mut server, MsgType::Error, id, format!("{e}\0").as_bytes());
                continue;
            }
            let enoent = |s: &mut UnixStream| reply(s, MsgType::Error, id, b"ENOENT\0");
            match kind {
                k if k == MsgType::Read as u32 => match st.nodes.get(&arg) {
                    Some((v, _)) => reply(&mut server, MsgType::Read, id, v),
                    None => enoent(&mut server),
                },
                k if k == MsgType::GetPerms as u32 => match st.nodes.get(&arg) {
                    Some((_, p)) => reply(&mut server, MsgType::GetPerms, id, p),
                    None => enoent(&mut server),
                },
                k if k == MsgType::Directory as u32 => match st.children(&arg) {
                    Some(names) => {
                        let list: Vec<u8> =
                            names.iter().flat_map(|n| n.bytes().chain([0])).collect();
                        reply(&mut server, MsgType::Directory, id, &list)
                    }
                    None => enoent(&mut server),
                },
                k if k == MsgType::IsDomainIntroduced as u32 => {
                    let known = arg.parse().is_ok_and(|d| st.introduced.contains(&d));
                    let answer: &[u8] = if known { b"T\0" } else { b"F\0" };
                    reply(&mut server, MsgType::IsDomainIntroduced, id, answer)
                }
                k if k == MsgType::Watch as u32 || k == MsgType::Unwatch as u32 => {
                    let mut parts = msg.payload.split(|&b| b == 0);
                    let path = String::from_utf8_lossy(parts.next().unwrap()).into_owned();
                    let token = String::from_utf8_lossy(parts.next().unwrap_or(b"")).into_owned();
                    if k == MsgType::Watch as u32 {
                        reply(&mut server, MsgType::Watch, id, b"OK\0");
                        st.watches.insert((path.clone(), token.clone()));
                        // xenstored fires a new watch once.
                        st.send_event(&path, &token);
                    } else if st.watches.remove(&(path, token)) {
                        reply(&mut server, MsgType::Unwatch, id, b"OK\0");
                    } else {
                        enoent(&mut server);
                    }
                }
                k if k == MsgType::Write as u32 => {
                    let value = &msg.payload[arg.len() + 1..];
                    st.dom0_write(&arg, value);
                    reply(&mut server, MsgType::Write, id, b"OK\0");
                }
                k if k == MsgType::Rm as u32 => {
                    if st.remove(&arg) {
                        reply(&mut server, MsgType::Rm, id, b"OK\0");
                    } else {
                        enoent(&mut server);
                    }
                }
                k if k == MsgType::SetPerms as u32 => {
                    let perms = msg.payload[arg.len() + 1..].to_vec();
                    match st.nodes.get_mut(&arg) {
                        Some((_, p)) => {
                            *p = perms;
                            reply(&mut server, MsgType::SetPerms, id, b"OK\0");
                        }
                        None => enoent(&mut server),
                    }
                }
                _ => reply(&mut server, MsgType::Error, id, b"EINVAL\0"),
            }
        }
    });
    Xenstore::new(client)
}
