//! The rig's hostile-guest scenario (scripts/scenarios/guests.sh, booted
//! with `ethos.rpc=off`, so the kernel offers no RPC channel of its own):
//! this program offers its own vchan server at the RPC node
//! (`data/vchan/0/rpc`), where the shadowdaemon attaches, and breaks the
//! protocol there three ways: garbage, a header claiming a length beyond
//! any frame, a producer index jump. Each time the daemon must close the
//! channel (and, the host test checks, keep serving everyone else). The
//! same lines as the linked-in app it replaces.
//!
//! A program can do it all with today's calls: a page it allocates, binds
//! and grants to dom0 (right FOREIGN), an unbound port for dom0 (FOREIGN),
//! the two xenstore keys (XENSTORE_WRITE); the init program has both
//! rights. The ring layout and its server side come from the `rpc` crate
//! (no_std), the same code the kernel's channel uses, so the daemon sees a
//! well-formed channel until the harm.
//!
//! The rings live in memory dom0 writes at any moment: the page is shared
//! with `ethos::raw::shared` (allocated, bound, granted, and reached only
//! by atomic accesses, the library's one place for that), so this program
//! has no unsafe code.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ethos::evtchn::{self, Channel};
use ethos::xenstore::{self, Tx};
use ethos::{event, pages, println, time, Event, Retired, Status};
use rpc::layout::{RIGHT_CONS, RIGHT_PROD};
use rpc::{Layout, PeerState, SharedMem, Vchan};

ethos::main!(main);

const APP: &str = "rpc-hostile";

/// Where the kernel's own channel is published when RPC is on
/// (`kernel/src/apps/rpc_offer.rs`): the node the daemon watches.
const NODE: &str = "data/vchan/0/rpc";

/// dom0, the daemon's domain.
const DOM0: u16 = 0;

/// xenstored's EAGAIN: the transaction met another writer; run it again.
const EAGAIN: u32 = 11;

use ethos::raw::shared::{self, SharedRegion};

fn say(text: &str) {
    println!("{APP}: {text}");
}

fn err(what: &str) -> impl Fn(Status) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Blocks until `id` completes or `ms` pass (an OR tree of it and a beep).
/// Returns whether it completed; the beep is gone either way, `id` stays
/// the caller's.
fn wait_or_timeout(id: Event, ms: u64) -> Result<bool, String> {
    event::wait_timeout(id, ms * time::MS).map_err(err("wait"))
}

/// Waits for a xenstore request (60 s at most) and retires it.
fn xs_done(id: Result<Event, Status>, what: &str) -> Result<Retired<Vec<u8>>, String> {
    let id = id.map_err(err(what))?;
    if !wait_or_timeout(id, 60_000)? {
        let _ = event::cancel(id);
        let _ = event::retire_empty(id);
        return Err(format!("{what}: no answer from xenstored in 60 s"));
    }
    event::retire_vec(id).map_err(err(what))
}

fn xs_ok(id: Result<Event, Status>, what: &str) -> Result<Vec<u8>, String> {
    let r = xs_done(id, what)?;
    match r.status {
        Status::Ok => Ok(r.value),
        Status::Remote => Err(format!("{what}: xenstored errno {}", r.errno)),
        s => Err(format!("{what}: {s}")),
    }
}

/// Publishes the channel's `ring-ref` and `event-channel` under [`NODE`]
/// in one transaction, retrying while the commit meets EAGAIN, as
/// libxenvchan's server does. The kernel's publisher also sets the keys'
/// permissions to this domain alone (`XsSetPerms`); this one needs not:
/// new nodes inherit those of the guest's `data` folder, which the
/// toolstack makes the guest's own, unreadable to other guests (dom0 reads
/// everything), and only the daemon has to find them.
fn publish(ring_ref: u32, port: u32) -> Result<(), String> {
    for _ in 0..10 {
        // The id is a word event: retired as one (retire_vec gives bytes only).
        let start = xenstore::transaction_start().map_err(err("transaction"))?;
        if !wait_or_timeout(start, 60_000)? {
            let _ = event::cancel(start);
            let _ = event::retire_empty(start);
            return Err(String::from(
                "transaction: no answer from xenstored in 60 s",
            ));
        }
        let started = event::retire_word(start).map_err(err("transaction"))?;
        if started.status != Status::Ok {
            return Err(format!("transaction: {}", started.status));
        }
        let tx = Tx(started.value as u32);
        for (key, value) in [("ring-ref", ring_ref), ("event-channel", port)] {
            let path = format!("{NODE}/{key}");
            xs_ok(
                xenstore::write(&path, format!("{value}").as_bytes(), tx),
                "write key",
            )?;
        }
        let end = xs_done(xenstore::transaction_end(tx, true), "commit")?;
        match end.status {
            Status::Ok => return Ok(()),
            Status::Remote if end.errno == EAGAIN => continue,
            Status::Remote => return Err(format!("commit: xenstored errno {}", end.errno)),
            s => return Err(format!("commit: {s}")),
        }
    }
    Err(String::from("ten commits met EAGAIN"))
}

/// One offered channel: its shared page (bound and granted for the
/// program's life), the vchan over it, the event channel's handle and
/// the Xen port dom0 binds.
struct Offer {
    vchan: Vchan<SharedRegion>,
    mem: SharedRegion,
    channel: Channel,
    port: u32,
}

/// Allocates, binds and grants one page to dom0, lays out a vchan server
/// over it (both rings inside the interface page: a 1 KiB ring for what the
/// daemon sends, 2 KiB for what this program sends, enough for every harm
/// below), and allocates the port dom0 binds. `round` picks the address,
/// so no two offers share one.
fn offer(round: u64) -> Result<(Offer, u32), String> {
    let va = pages::USER_REGION.start + round * abi::PAGE_SIZE;
    let (mem, grants) = shared::share(va, 1, DOM0).map_err(err("share a page"))?;
    let ring_ref = grants[0];
    let layout = Layout::new(10, 11).map_err(|e| format!("layout: {e:?}"))?;
    let vchan = Vchan::server(layout, mem, None, None, &[]).map_err(|e| format!("vchan: {e:?}"))?;
    let (channel, port) = evtchn::alloc_unbound(DOM0).map_err(err("event channel"))?;
    Ok((
        Offer {
            vchan,
            mem,
            channel,
            port,
        },
        ring_ref,
    ))
}

/// Waits until the daemon's end is in `want`, looking again at each of its
/// kicks and at least once a second (up to `secs` looks).
fn wait_peer(o: &mut Offer, want: PeerState, secs: u32) -> Result<(), String> {
    for _ in 0..secs {
        let state = o.vchan.peer_state().map_err(|e| format!("peer: {e:?}"))?;
        if state == want {
            return Ok(());
        }
        let note = evtchn::wait(o.channel).map_err(err("wait"))?;
        wait_or_timeout(note, 1000)?;
        // Either it fired (retire it) or not (cancel, then retire).
        let _ = event::cancel(note);
        let _ = event::retire_word(note);
    }
    Err(format!("the daemon's end never became {want:?}"))
}

/// Kicks the daemon. Always, not only when the ring's notify bits ask:
/// a kick carries nothing, and a hostile end owes the peer no economy.
fn kick(o: &Offer) -> Result<(), String> {
    evtchn::notify(o.channel).map_err(err("notify"))
}

fn write_all(o: &mut Offer, bytes: &[u8]) -> Result<(), String> {
    let t = o.vchan.write(bytes).map_err(|e| format!("write: {e:?}"))?;
    if t.bytes != bytes.len() {
        return Err(format!("wrote {} of {} bytes", t.bytes, bytes.len()));
    }
    kick(o)
}

/// One way of breaking the protocol.
type Harm = fn(&mut Offer) -> Result<(), String>;

fn garbage(o: &mut Offer) -> Result<(), String> {
    write_all(o, &[0xee; 64])
}

fn oversized_length(o: &mut Offer) -> Result<(), String> {
    // A well-formed Ping header claiming a 4 GiB payload.
    let mut header = [0u8; 16];
    header[0..8].copy_from_slice(&7u64.to_le_bytes());
    header[8..10].copy_from_slice(&rpc::Op::Ping.code().to_le_bytes());
    header[12..16].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    write_all(o, &header)
}

fn ring_index_jump(o: &mut Offer) -> Result<(), String> {
    // The producer index of the ring this end writes, half the index space
    // ahead of the consumer, as a corrupt or malicious server would set it.
    let cons = o.mem.load_u32_acquire(RIGHT_CONS);
    o.mem
        .store_u32_release(RIGHT_PROD, cons.wrapping_add(0x8000_0000));
    kick(o)
}

/// Closes a round's port once the daemon let go. Its page stays bound
/// and granted (`shared::share` keeps it for the program's life); the
/// kernel takes it back at exit, once dom0 no longer maps it.
fn retire_offer(o: Offer) {
    let _ = evtchn::close(o.channel);
}

fn run() -> Result<String, String> {
    let rounds: [(&str, Harm); 3] = [
        ("garbage", garbage),
        ("oversized length", oversized_length),
        ("ring index jump", ring_index_jump),
    ];
    // Each round's channel is kept until all are done: the daemon ignores
    // an offer equal to the one it last tried (same ring-ref and port), and
    // a grant reference or port given back would be handed out again for
    // the next round. Kept, each round's offer is new.
    let mut done = Vec::new();
    for (n, (name, harm)) in rounds.iter().enumerate() {
        let (mut o, ring_ref) = offer(n as u64)?;
        publish(ring_ref, o.port)?;
        wait_peer(&mut o, PeerState::Live, 120)?;
        say(&format!("round {}: daemon attached; sending {name}", n + 1));
        harm(&mut o)?;
        wait_peer(&mut o, PeerState::Closed, 60)?;
        say(&format!("round {}: the daemon closed the channel", n + 1));
        done.push(o);
    }
    for o in done {
        retire_offer(o);
    }
    Ok(String::from("all 3 rounds refused: ok"))
}

fn main(_: ethos::Args) -> i32 {
    match run() {
        Ok(done) => {
            say(&done);
            0
        }
        Err(e) => {
            say(&format!("FAILED: {e}"));
            1
        }
    }
}
