//! The user-mode test suite: what a hostile or broken program can and
//! cannot do, checked from user mode under real Xen. One line per test,
//! then `usertest: N passed, M failed` (the rig reads it).
//!
//! The bad-pointer tests call the kernel through `ethos::raw` with
//! addresses no safe wrapper would pass; that is this program's only
//! unsafe code, and none of those calls lets the kernel write anywhere the
//! program uses (each is refused before anything is touched).

#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

use abi::{Call, Status};
use alloc::vec::Vec;
use ethos::process::{self, ExitStatus};
use ethos::{event, pages, println, rpc, stats, time, Event, Tree};

ethos::main!(main);

/// A kernel address (the image), one in the user half with nothing
/// mapped, and a range that wraps around the address space.
const KERNEL: u64 = 0x40_0000;
const UNMAPPED: u64 = abi::USER_START + (200 << 30);
const WRAPS: u64 = u64::MAX - 3;

/// Where KernelStats puts the free frame count (`kernel/src/syscall/program.rs`).
const FRAMES_FREE: usize = 14;

fn status(rax: u64) -> Option<Status> {
    Status::from_code(rax as u32)
}

/// A raw call, for the addresses the safe wrappers would never pass.
#[allow(unsafe_code)]
fn raw4(call: Call, a: u64, b: u64, c: u64, d: u64) -> Option<Status> {
    // SAFETY: every call below hands the kernel an address it must refuse
    // (a kernel address, an unmapped one, a wrapping range, a read-only
    // page, a misaligned tree): nothing this program uses is written.
    let (rax, _, _) = unsafe { ethos::raw::syscall4(call as u64, a, b, c, d) };
    status(rax)
}

struct Suite {
    passed: u32,
    failed: u32,
}

impl Suite {
    fn check(&mut self, name: &str, r: Result<(), alloc::string::String>) {
        match r {
            Ok(()) => {
                self.passed += 1;
                println!("usertest: {name} ... ok");
            }
            Err(why) => {
                self.failed += 1;
                println!("usertest: {name} ... FAILED: {why}");
            }
        }
    }
}

fn expect(what: &str, got: Option<Status>, want: Status) -> Result<(), alloc::string::String> {
    if got == Some(want) {
        Ok(())
    } else {
        Err(alloc::format!("{what}: {got:?}, want {want:?}"))
    }
}

fn main(args: ethos::Args) -> i32 {
    if args.get(1) == Some("peer") {
        return peer();
    }
    let mut s = Suite {
        passed: 0,
        failed: 0,
    };
    s.check(
        "kernel, unmapped and wrapping pointers are refused",
        bad_inputs(),
    );
    s.check(
        "output into a read-only page is refused",
        read_only_output(),
    );
    s.check("misaligned and oversized arguments are named", shapes());
    s.check(
        "forged and stale page capabilities are refused",
        capabilities(),
    );
    s.check(
        "unknown call numbers and unknown events are named, sockets without networking too",
        unknowns(),
    );
    s.check("another process's events and pages are refused", foreign());
    s.check(
        "a crashing child's exit event carries the fault",
        crashing_children(),
    );
    s.check("a program's x87/SSE registers are its own", fpu_registers());
    s.check("16 processes alive, the next spawn refused", sixteen());
    s.check("a spinning process does not hold off a beep", preemption());
    s.check("spawn and exit cycles give every frame back", no_leak());
    println!("usertest: {} passed, {} failed", s.passed, s.failed);
    let _ = retire_any(rpc::remove(PEER_FILE));
    i32::from(s.failed != 0)
}

fn bad_inputs() -> Result<(), alloc::string::String> {
    expect(
        "print from the kernel image",
        raw4(Call::Print, KERNEL, 16, 0, 0),
        Status::BadAddress,
    )?;
    expect(
        "print from an unmapped page",
        raw4(Call::Print, UNMAPPED, 16, 0, 0),
        Status::BadAddress,
    )?;
    expect(
        "print of a wrapping range",
        raw4(Call::Print, WRAPS, 16, 0, 0),
        Status::BadAddress,
    )?;
    expect(
        "xenstore path from the kernel",
        raw4(Call::XsRead, KERNEL, 8, 0, 0),
        Status::BadAddress,
    )?;
    expect(
        "stats into the kernel",
        raw4(Call::KernelStats, KERNEL, 64, 0, 0),
        Status::BadAddress,
    )?;
    expect(
        "stats into an unmapped page",
        raw4(Call::KernelStats, UNMAPPED, 64, 0, 0),
        Status::BadAddress,
    )?;
    expect(
        "file path wrapping",
        raw4(Call::FileInfo, WRAPS, 8, 0, 0),
        Status::BadAddress,
    )?;
    Ok(())
}

fn read_only_output() -> Result<(), alloc::string::String> {
    // This function's own code: mapped, readable, not writable.
    let text = read_only_output as *const () as u64 & !7;
    expect(
        "stats into text",
        raw4(Call::KernelStats, text, 64, 0, 0),
        Status::BadAddress,
    )?;
    let e = event::beep(time::now().map_err(|e| alloc::format!("{e}"))?)
        .map_err(|e| alloc::format!("beep: {e}"))?;
    let tree = ethos::tree::single(e).map_err(|e| alloc::format!("{e:?}"))?;
    // A tree the kernel accepts, with its output into text: refused before
    // the process sleeps, so the wake is not lost.
    expect(
        "block output into text",
        raw4(Call::Block, tree.as_ptr() as u64, 2, text, 1),
        Status::BadAddress,
    )?;
    process_block_and_retire(e)
}

fn process_block_and_retire(e: Event) -> Result<(), alloc::string::String> {
    let r = event::block_and_retire(e).map_err(|e| alloc::format!("block: {e}"))?;
    if r.status == Status::Ok {
        Ok(())
    } else {
        Err(alloc::format!("beep retired {:?}", r.status))
    }
}

fn shapes() -> Result<(), alloc::string::String> {
    let tree = [0u64; 4];
    let odd = tree.as_ptr() as u64 + 4;
    expect(
        "misaligned tree",
        raw4(Call::Block, odd, 1, 0, 0),
        Status::BadAlignment,
    )?;
    let buf = [0u8; 16];
    expect(
        "a print longer than a call copies",
        raw4(Call::Print, buf.as_ptr() as u64, 1 << 20, 0, 0),
        Status::BadLength,
    )?;
    expect(
        "a tree of u64::MAX elements",
        raw4(Call::Block, tree.as_ptr() as u64, u64::MAX, 0, 0),
        Status::BadLength,
    )?;
    Ok(())
}

fn capabilities() -> Result<(), alloc::string::String> {
    let forged = pages::Page::from_raw(0x0000_0001_dead_beef);
    let r = pages::bind(forged, pages::USER_REGION.start);
    if r != Err(Status::ForgedCapability) {
        return Err(alloc::format!("forged bind: {r:?}"));
    }
    let (page, revoked) = pages::alloc().map_err(|e| alloc::format!("alloc: {e}"))?;
    pages::free(page).map_err(|e| alloc::format!("free: {e}"))?;
    let _ = event::retire_empty(revoked);
    let r = pages::bind(page, pages::USER_REGION.start);
    if r != Err(Status::StaleCapability) {
        return Err(alloc::format!("stale bind: {r:?}"));
    }
    Ok(())
}

#[allow(unsafe_code)]
fn unknowns() -> Result<(), alloc::string::String> {
    // SAFETY: an unknown call number touches nothing.
    let (rax, _, _) = unsafe { ethos::raw::syscall0(9999) };
    expect("call 9999", status(rax), Status::UnknownCall)?;
    // SAFETY: as above: the first number past the last call.
    let (rax, _, _) = unsafe { ethos::raw::syscall0(Call::COUNT) };
    expect("the call after the last", status(rax), Status::UnknownCall)?;
    // List names a live event, and says the size it needs when the buffer
    // is too small (writing nothing).
    let beep = event::beep(time::now().map_err(|e| alloc::format!("{e}"))? + 60_000 * time::MS)
        .map_err(|e| alloc::format!("beep: {e}"))?;
    let listed = event::list().map_err(|e| alloc::format!("list: {e}"))?;
    if !listed.pending.contains(&beep) {
        return Err(alloc::format!("list: {listed:?} lacks the beep {beep:?}"));
    }
    // SAFETY: a zero-length output buffer: the kernel writes nothing.
    let (rax, _, need) = unsafe { ethos::raw::syscall2(Call::List as u64, 0x1000, 0) };
    expect("list into no room", status(rax), Status::BufferTooSmall)?;
    if need < 8 {
        return Err(alloc::format!("list into no room: {need} bytes needed"));
    }
    let _ = event::cancel(beep);
    let _ = event::retire_empty(beep);
    // Permission words the library would not send: the kernel checks them
    // itself (no xenstore request is made).
    for words in [&b"x5\0"[..], b"r\0", b"r70000\0", b"n5"] {
        let path = b"data/usertest-perms";
        // SAFETY: both buffers are live and only read.
        let (rax, _, _) = unsafe {
            ethos::raw::syscall5(
                Call::XsSetPerms as u64,
                path.as_ptr() as u64,
                path.len() as u64,
                words.as_ptr() as u64,
                words.len() as u64,
                0,
            )
        };
        expect("bad permission words", status(rax), Status::InvalidArgument)?;
    }
    // This image has no networking: the socket calls exist, and say so.
    expect(
        "listen without networking",
        ethos::net::Listener::listen(80, 1, ethos::net::Buffers::Small).err(),
        Status::NoNetwork,
    )?;
    expect(
        "net stats without networking",
        ethos::net::stats().err(),
        Status::NoNetwork,
    )?;
    let r = event::retire_word(Event::from_raw(0x1234_5678_9abc_def0));
    if r.is_ok() || r.err() != Some(Status::UnknownEvent) {
        return Err(alloc::format!("retire of a made-up id: {r:?}"));
    }
    Ok(())
}

fn crashing_children() -> Result<(), alloc::string::String> {
    for name in [
        "fault-null",
        "fault-read-kernel",
        "fault-write-kernel",
        "fault-write-text",
        "fault-exec-stack",
    ] {
        let (_, exit) =
            process::spawn(name, &[]).map_err(|e| alloc::format!("spawn {name}: {e}"))?;
        match process::wait(exit) {
            Ok(ExitStatus::Faulted(14)) => {}
            other => return Err(alloc::format!("{name} ended {other:?}, want a page fault")),
        }
    }
    // The FS base is not the program's to set: an invalid opcode.
    let (_, exit) = process::spawn("fault-wrfsbase", &[])
        .map_err(|e| alloc::format!("spawn fault-wrfsbase: {e}"))?;
    match process::wait(exit) {
        Ok(ExitStatus::Faulted(6)) => Ok(()),
        other => Err(alloc::format!(
            "fault-wrfsbase ended {other:?}, want an invalid opcode"
        )),
    }
}

/// `fpu-check` runs its own children and says whether every program's
/// x87/SSE registers stayed its own.
fn fpu_registers() -> Result<(), alloc::string::String> {
    // It spawns its own children: the one right it needs.
    let (_, exit) = process::spawn_with("fpu-check", &[], abi::rights::SPAWN)
        .map_err(|e| alloc::format!("spawn fpu-check: {e}"))?;
    match process::wait(exit) {
        Ok(ExitStatus::Code(0)) => Ok(()),
        other => Err(alloc::format!("fpu-check ended {other:?}")),
    }
}

/// User address spaces alive, from `KernelStats`.
const SPACES: usize = 17;

fn sixteen() -> Result<(), alloc::string::String> {
    // Children until the table is full: 16 processes in all, counting this
    // one and the kernel's own service processes (control, and rpc-offer
    // when RPC is on): at least 13 children.
    let mut exits = Vec::new();
    let refused = loop {
        if exits.len() >= 16 {
            break None;
        }
        match process::spawn("sleep", &["3000"]) {
            Ok((_, exit)) => exits.push(exit),
            Err(e) => break Some(e),
        }
    };
    let mut counters = [0u64; 20];
    stats::read(&mut counters).map_err(|e| alloc::format!("stats: {e}"))?;
    let alive = counters[SPACES];
    println!("usertest: {alive} programs alive when a spawn was refused with {refused:?}");
    let storm = match refused {
        Some(Status::TooManyProcesses) if exits.len() >= 13 && alive == exits.len() as u64 + 1 => {
            Ok(())
        }
        other => Err(alloc::format!(
            "after {} spawns: {other:?}, {alive} programs alive",
            exits.len()
        )),
    };
    for exit in exits {
        match process::wait(exit) {
            Ok(ExitStatus::Code(0)) => {}
            other => return Err(alloc::format!("a child ended {other:?}")),
        }
    }
    storm
}

fn preemption() -> Result<(), alloc::string::String> {
    let (_, spinner) =
        process::spawn("spin", &["400"]).map_err(|e| alloc::format!("spawn spin: {e}"))?;
    let now = time::now().map_err(|e| alloc::format!("{e}"))?;
    let beep = event::beep(now + 20 * time::MS).map_err(|e| alloc::format!("beep: {e}"))?;
    let r = event::block_and_retire(beep).map_err(|e| alloc::format!("block: {e}"))?;
    if r.status != Status::Ok {
        return Err(alloc::format!("beep: {:?}", r.status));
    }
    // The order, not the time: the beep woke us while the spinner, which
    // never makes a system call, had not finished.
    let still_running = event::retire_word(spinner) == Err(Status::NotComplete);
    match process::wait(spinner) {
        Ok(ExitStatus::Code(0)) => {}
        other => return Err(alloc::format!("spin ended {other:?}")),
    }
    if still_running {
        Ok(())
    } else {
        Err("the spinner finished before the beep woke us".into())
    }
}

fn frames_free() -> Result<u64, alloc::string::String> {
    let mut counters = [0u64; 20];
    let n = stats::read(&mut counters).map_err(|e| alloc::format!("stats: {e}"))?;
    if n <= FRAMES_FREE {
        return Err(alloc::format!("only {n} counters"));
    }
    Ok(counters[FRAMES_FREE])
}

fn no_leak() -> Result<(), alloc::string::String> {
    let before = frames_free()?;
    for _ in 0..10 {
        let (_, exit) =
            process::spawn("hello", &["cycle"]).map_err(|e| alloc::format!("spawn: {e}"))?;
        match process::wait(exit) {
            Ok(ExitStatus::Code(0)) => {}
            other => return Err(alloc::format!("hello ended {other:?}")),
        }
    }
    let after = frames_free()?;
    if before == after {
        println!(
            "usertest: frames free before and after 10 spawn/exit cycles: {before} and {after}"
        );
        Ok(())
    } else {
        Err(alloc::format!("frames free {before} before, {after} after"))
    }
}

/// Where the peer leaves its event id and page capability (in this
/// guest's folder in dom0, through the shadowdaemon).
const PEER_FILE: &str = "usertest-peer.txt";

/// Waits for an RPC event (at most 10 s) and retires it, with its bytes.
fn retire_any(id: Result<Event, Status>) -> Result<Vec<u8>, Status> {
    let id = id?;
    let timeout = event::beep(time::now()? + 10_000 * time::MS)?;
    let woke = event::wait(&Tree::any([id, timeout]))?;
    let _ = event::cancel(timeout);
    let _ = event::retire_empty(timeout);
    if !woke.contains(&id) {
        let _ = event::cancel(id);
        let _ = event::retire_empty(id);
        return Err(Status::Busy);
    }
    let r = event::retire_vec(id)?;
    if r.status == Status::Ok {
        Ok(r.value)
    } else {
        Err(r.status)
    }
}

/// `usertest peer`: holds a pending event and a page, tells their ids
/// through a file, and lives for three seconds.
fn peer() -> i32 {
    let Ok((page, _revoked)) = pages::alloc() else {
        return 2;
    };
    let Ok(beep) = time::now().and_then(|now| event::beep(now + 3000 * time::MS)) else {
        return 2;
    };
    let text = alloc::format!("{} {}", beep.id(), page.raw());
    if retire_any(rpc::file_write(PEER_FILE, 0, text.as_bytes(), true)).is_err() {
        return 3;
    }
    match event::block_and_retire(beep) {
        Ok(_) => 0,
        Err(_) => 4,
    }
}

fn foreign() -> Result<(), alloc::string::String> {
    let _ = retire_any(rpc::remove(PEER_FILE));
    let (_, exit) =
        process::spawn("usertest", &["peer"]).map_err(|e| alloc::format!("spawn peer: {e}"))?;
    let mut told = None;
    for _ in 0..100 {
        if let Ok(bytes) = retire_any(rpc::file_read(PEER_FILE, 0, 64)) {
            let text = core::str::from_utf8(&bytes).unwrap_or("");
            let mut words = text.split(' ').filter_map(|w| w.parse::<u64>().ok());
            if let (Some(e), Some(c)) = (words.next(), words.next()) {
                told = Some((e, c));
                break;
            }
        }
        let _ = time::now()
            .and_then(|now| event::beep(now + 50 * time::MS))
            .and_then(event::block_and_retire);
    }
    let (theirs, cap) = told.ok_or("the peer never told its ids (is the shadowdaemon there?)")?;
    // Another process's live event reads like an unknown one.
    let r = event::retire_word(Event::from_raw(theirs));
    if r.as_ref().err() != Some(&Status::UnknownEvent) {
        return Err(alloc::format!("retire of the peer's event: {r:?}"));
    }
    let c = event::cancel(Event::from_raw(theirs));
    if c != Err(Status::UnknownEvent) {
        return Err(alloc::format!("cancel of the peer's event: {c:?}"));
    }
    let b = pages::bind(pages::Page::from_raw(cap), pages::USER_REGION.start);
    if b != Err(Status::ForeignCapability) {
        return Err(alloc::format!("bind of the peer's page: {b:?}"));
    }
    match process::wait(exit) {
        Ok(ExitStatus::Code(0)) => Ok(()),
        other => Err(alloc::format!("the peer ended {other:?}")),
    }
}
