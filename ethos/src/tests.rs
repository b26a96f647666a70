//! The library against the fake kernel.

use std::panic::{self, AssertUnwindSafe};
use std::string::{String, ToString};
use std::vec::Vec;

use abi::{Call, Status};

use crate::fake::{self, Value};
use crate::{console, event, pages, process, rpc, rt, stats, time, xenstore, Event, Tree};

const MS: u64 = time::MS;

#[test]
fn two_beeps_and_an_and_tree() {
    let start = time::now().unwrap();
    assert_eq!(start, fake::START_NS);
    let a = event::beep(start + 20 * MS).unwrap();
    let b = event::beep(start + 10 * MS).unwrap();
    let done = event::wait(&Tree::all([a, b])).unwrap();
    assert_eq!(done.len(), 2);
    assert!(done.contains(&a) && done.contains(&b));
    assert_eq!(time::now().unwrap(), start + 20 * MS);
    let ra = event::retire_word(a).unwrap();
    assert!(ra.is_ok());
    assert_eq!(ra.value, start + 20 * MS);
    assert_eq!(
        event::retire_word(b).unwrap().into_result(),
        Ok(start + 10 * MS)
    );
    // Retired ids are dead.
    assert_eq!(event::retire_word(a), Err(Status::UnknownEvent));
    assert_eq!(fake::live_events(), 0);
}

#[test]
fn an_or_tree_wakes_at_the_first_and_a_cancel_is_reported() {
    let start = time::now().unwrap();
    let slow = event::beep(start + 50 * MS).unwrap();
    let fast = event::beep(start + 15 * MS).unwrap();
    let mut out = [Event::from_raw(0); 2];
    let flat = Tree::any([slow, fast]).flatten().unwrap();
    assert_eq!(event::block(&flat, &mut out), Ok(1));
    assert_eq!(out[0], fast);
    assert_eq!(time::now().unwrap(), start + 15 * MS);
    assert_eq!(event::retire_word(slow), Err(Status::NotComplete));
    event::cancel(slow).unwrap();
    assert_eq!(event::cancel(slow), Err(Status::Cancelled));
    let r = event::retire_word(slow).unwrap();
    assert_eq!(r.status, Status::Cancelled);
    assert_eq!(r.into_result(), Err(Status::Cancelled));
    assert_eq!(event::cancel(fast), Err(Status::AlreadyComplete));
    assert!(event::retire_empty(fast).unwrap().is_ok());
}

#[test]
fn nested_trees_reach_the_kernel_in_the_abi_order() {
    let t0 = time::now().unwrap();
    let e: Vec<Event> = [5, 40, 25, 30]
        .iter()
        .map(|d| event::beep(t0 + d * MS).unwrap())
        .collect();
    // (5 AND 40) OR at_least(2, [25, 30]): satisfied at +30.
    let tree = Tree::any([Tree::all([e[0], e[1]]), Tree::at_least(2, [e[2], e[3]])]);
    let done = event::wait(&tree).unwrap();
    assert_eq!(time::now().unwrap(), t0 + 30 * MS);
    assert_eq!(done.len(), 3);
    // A tree that could never complete would block forever; one with a
    // bad count is refused by the kernel's own check too.
    let bad = [
        abi::WaitElement {
            event: e[1].id(),
            parent: 1,
            count: 0,
        },
        abi::WaitElement {
            event: 0,
            parent: abi::WaitElement::NO_PARENT,
            count: 2,
        },
    ];
    assert_eq!(event::block(&bad, &mut []), Err(Status::BadTree));
    assert_eq!(event::block(&[], &mut []), Err(Status::EmptyTree));
    assert_eq!(event::block_and_retire(e[1]).unwrap().value, t0 + 40 * MS);
}

#[test]
fn bytes_events_retire_into_buffers_and_report_sizes() {
    let ev = rpc::file_read("/etc/motd", 4, 100).unwrap();
    let s = &fake::started()[0];
    assert_eq!(s.call, Call::FileRead);
    assert_eq!(s.bufs[0], b"/etc/motd");
    assert_eq!((s.args[2], s.args[3]), (4, 100));
    assert_eq!(s.event, ev);
    fake::complete(ev, Status::Ok, 0, Value::Bytes(b"hello".to_vec()));
    // Too small: the event stays.
    let mut small = [0u8; 3];
    assert_eq!(
        event::retire_bytes(ev, &mut small),
        Err(Status::BufferTooSmall)
    );
    assert_eq!(event::retire_word(ev), Err(Status::BufferTooSmall));
    let mut buf = [0u8; 8];
    let r = event::retire_bytes(ev, &mut buf).unwrap();
    assert_eq!((r.status, r.value), (Status::Ok, 5));
    assert_eq!(&buf[..5], b"hello");

    let ev = xenstore::read("domid", xenstore::Tx::NONE).unwrap();
    fake::complete(ev, Status::Ok, 0, Value::Bytes(b"3".to_vec()));
    let r = event::retire_vec(ev).unwrap();
    assert_eq!(r.value, b"3");
    let ev = rpc::ping().unwrap();
    fake::complete(ev, Status::Ok, 0, Value::Empty);
    assert_eq!(event::retire_vec(ev).unwrap().value, b"");
}

#[test]
fn remote_errors_carry_the_peers_errno() {
    let ev = rpc::remove("/nope").unwrap();
    fake::complete(ev, Status::Remote, 2, Value::Empty);
    let r = event::retire_empty(ev).unwrap();
    assert_eq!((r.status, r.errno), (Status::Remote, 2));
    assert_eq!(
        event::decode_event_status(1 | (13 << 32)),
        (Status::Remote, 13)
    );
    // A code the library does not know is not success.
    assert_eq!(event::decode_event_status(9999).0, Status::InvalidArgument);
}

#[test]
fn writes_pass_both_buffers() {
    let ev = rpc::file_write("/tmp/x", 8, b"data", true).unwrap();
    let s = fake::started().pop().unwrap();
    assert_eq!(s.bufs, [b"/tmp/x".to_vec(), b"data".to_vec()]);
    assert_eq!((s.args[2], s.args[5]), (8, 1));
    fake::complete(ev, Status::Ok, 0, Value::Word(4));
    assert_eq!(event::retire_word(ev).unwrap().value, 4);
    let _ = xenstore::write("a/b", b"v", xenstore::Tx(9)).unwrap();
    let s = fake::started().pop().unwrap();
    assert_eq!(s.bufs, [b"a/b".to_vec(), b"v".to_vec()]);
    assert_eq!(s.args[4], 9);
}

#[test]
fn print_splits_lines_and_long_output_at_char_boundaries() {
    crate::println!("pid {} says hi", 7);
    crate::print!("a\nb\n\nc");
    crate::println!();
    assert_eq!(fake::printed(), ["pid 7 says hi", "a", "b", "", "c", ""]);

    // 3-byte characters never split across two Print calls.
    let long: String = "é€".repeat(100); // 500 bytes
    crate::println!("{long}");
    let lines: Vec<String> = fake::printed().split_off(6);
    assert!(lines.len() >= 3, "{lines:?}");
    assert!(lines.iter().all(|l| l.len() <= console::LINE));
    assert_eq!(lines.concat(), long);
    assert!(console::print("plain").is_ok());
}

#[cfg(feature = "log")]
#[test]
fn the_logger_prints_level_target_and_message() {
    // rt::start (another test) may have installed it already: same logger.
    let _ = crate::logger::init(log::LevelFilter::Info);
    log::info!(target: "demo", "{} beeps", 2);
    log::debug!("hidden");
    assert_eq!(fake::printed(), ["INFO demo: 2 beeps"]);
}

fn exits(f: impl FnOnce()) -> (i32, String) {
    let err = panic::catch_unwind(AssertUnwindSafe(f)).unwrap_err();
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    (fake::exit_code().unwrap(), msg)
}

#[test]
fn start_runs_main_with_checked_arguments_and_exits_with_its_code() {
    static PAGE: &[u8] = b"hello\0world\0";
    let record = abi::Args {
        pid: 9,
        argc: 2,
        len: PAGE.len() as u32,
        reserved: 0,
    };
    let (code, msg) = exits(|| {
        rt::start(record, PAGE, |args| {
            assert_eq!(args.pid(), 9);
            assert_eq!(args.iter().collect::<Vec<_>>(), ["hello", "world"]);
            -3
        })
    });
    assert_eq!(code, -3);
    assert!(msg.starts_with(fake::EXIT_PANIC), "{msg}");

    let bad = abi::Args { argc: 5, ..record };
    let (code, _) = exits(|| rt::start(bad, PAGE, |_| 0));
    assert_eq!(code, rt::EXIT_BAD_ARGS);
    assert!(fake::printed()
        .iter()
        .any(|l| l.contains("argument record refused")));
}

#[test]
fn spawn_passes_name_and_args_and_wait_decodes_the_exit() {
    let (pid, exit) = process::spawn("hello", &["a", "bc"]).unwrap();
    assert_eq!(pid, fake::PID + 1);
    let s = fake::started().pop().unwrap();
    assert_eq!(s.bufs, [b"hello".to_vec(), b"a\0bc".to_vec()]);
    fake::complete(exit, Status::Faulted, 0, Value::Word(14));
    assert_eq!(process::wait(exit), Ok(process::ExitStatus::Faulted(14)));
    assert_eq!(process::spawn("missing", &[]), Err(Status::NoSuchProgram));
    assert_eq!(
        process::spawn(&"x".repeat(abi::MAX_NAME + 1), &[]),
        Err(Status::TooLarge)
    );
    assert_eq!(process::pid(), Ok(fake::PID));
}

#[test]
fn the_heap_grows_page_by_page_and_stops_cleanly() {
    let start = rt::heap::REGION.start;
    let got = rt::heap::grow(start, 1);
    assert_eq!(got as u64, rt::heap::MIN_GROW);
    let pages = fake::bound_pages();
    assert_eq!(pages.len() as u64, rt::heap::MIN_GROW / abi::PAGE_SIZE);
    assert_eq!(pages[0], start);
    assert!(pages.windows(2).all(|w| w[1] == w[0] + abi::PAGE_SIZE));
    // The revoked events were let go of: no quota held.
    assert_eq!(fake::live_events(), 0);

    // Out of pages part way: what was bound is reported, then nothing.
    fake::set_page_limit(pages.len() + 3);
    let top = start + got as u64;
    assert_eq!(rt::heap::grow(top, 100 * 4096), 3 * 4096);
    assert_eq!(rt::heap::grow(top + 3 * 4096, 1), 0);
    // Outside the region or misaligned: nothing.
    assert_eq!(rt::heap::grow(rt::heap::REGION.end, 1), 0);
    assert_eq!(rt::heap::grow(start + 1, 1), 0);
    assert_eq!(fake::live_events(), 0);
}

#[test]
fn programs_bind_only_outside_the_heap() {
    let (page, revoked) = pages::alloc().unwrap();
    assert_eq!(
        pages::bind(page, rt::heap::REGION.start),
        Err(Status::InvalidArgument)
    );
    assert_eq!(
        pages::bind(page, pages::USER_REGION.start + 1),
        Err(Status::BadAlignment)
    );
    pages::bind(page, pages::USER_REGION.start).unwrap();
    assert_eq!(
        pages::bind(page, pages::USER_REGION.start),
        Err(Status::AlreadyBound)
    );
    pages::unbind(page).unwrap();
    assert_eq!(pages::unbind(page), Err(Status::NotBound));
    pages::free(page).unwrap();
    assert!(event::retire_empty(revoked).unwrap().is_ok());
    assert_eq!(pages::free(page), Err(Status::ForgedCapability));
    assert_eq!(pages::grant(pages::Page::from_raw(1), 0, true), Ok(42));
}

#[test]
fn kernel_stats_are_read_as_words() {
    crate::println!("one line");
    let mut out = [0u64; 8];
    assert_eq!(stats::read(&mut out), Ok(3));
    assert_eq!(out[1], 1);
    assert_eq!(out[2], fake::START_NS);
    let mut two = [0u64; 2];
    assert_eq!(stats::read(&mut two), Ok(2));
}

#[test]
fn a_tree_that_cannot_wake_is_a_fake_kernel_panic_not_a_hang() {
    let ev = rpc::ping().unwrap();
    let r = panic::catch_unwind(|| event::block_one(ev));
    assert!(r.is_err());
}

#[test]
fn bound_pages_are_read_and_written_where_they_are_bound() {
    let (page, revoked) = pages::alloc().unwrap();
    let va = pages::USER_REGION.start + 3 * 4096;
    pages::bind(page, va).unwrap();
    let mut fresh = [0xffu8; 16];
    pages::read_at(va + 4000, &mut fresh).unwrap();
    assert_eq!(fresh, [0; 16], "a new page reads as zeroes");
    pages::write_at(va + 100, b"ethos page").unwrap();
    let mut back = [0u8; 10];
    pages::read_at(va + 100, &mut back).unwrap();
    assert_eq!(&back, b"ethos page");
    // Bound elsewhere, the same page holds the same bytes.
    pages::unbind(page).unwrap();
    let elsewhere = pages::USER_REGION.start + 9 * 4096;
    pages::bind(page, elsewhere).unwrap();
    pages::read_at(elsewhere + 100, &mut back).unwrap();
    assert_eq!(&back, b"ethos page");
    // Outside the program's own region (the heap's, past the end, a range
    // that wraps): refused before any byte is touched.
    assert_eq!(
        pages::write_at(rt::heap::REGION.start, b"x"),
        Err(Status::InvalidArgument)
    );
    assert_eq!(
        pages::read_at(pages::USER_REGION.end - 4, &mut back),
        Err(Status::InvalidArgument)
    );
    assert_eq!(
        pages::write_at(pages::USER_REGION.start - 1, b"xy"),
        Err(Status::InvalidArgument)
    );
    assert_eq!(
        pages::write_at(u64::MAX - 2, b"xyz"),
        Err(Status::InvalidArgument)
    );
    // An address no page is bound at is a fault, as on the guest.
    let unbound = panic::catch_unwind(|| pages::read_at(va, &mut [0u8; 1]));
    assert!(unbound.is_err());
    pages::free(page).unwrap();
    assert!(event::retire_empty(revoked).unwrap().is_ok());
}

#[test]
fn sockets_pass_their_words_as_the_abi_says() {
    use crate::net::{self, Buffers, Conn, Listener, Udp};
    let l = Listener::listen(80, 100, Buffers::Small).unwrap();
    let big = Listener::listen(8080, 2, Buffers::Large).unwrap();
    let u = Udp::bind(7).unwrap();
    assert_ne!(l, big);
    assert_eq!(
        fake::sockets(),
        [
            (l.raw(), fake::SocketKind::Listener(80)),
            (big.raw(), fake::SocketKind::Listener(8080)),
            (u.raw(), fake::SocketKind::Udp(7)),
        ]
    );
    let accept = l.accept().unwrap();
    let (c, connected) = Conn::connect([192, 0, 2, 1], 9999).unwrap();
    let recv = c.recv(4096).unwrap();
    let send = c.send(b"hello").unwrap();
    u.send([10, 1, 2, 3], 53, b"datagram").unwrap();
    let s = fake::started();
    assert_eq!(s[0].call, Call::TcpAccept);
    assert_eq!(s[0].args[0], u64::from(l.raw()));
    assert_eq!(s[0].event, accept);
    assert_eq!(s[1].call, Call::TcpConnect);
    // The address's first octet is the word's most significant byte.
    assert_eq!(s[1].args[..2], [0xc000_0201, 9999]);
    assert_eq!(s[1].event, connected);
    assert_eq!(
        (s[2].call, s[2].args[1], s[2].event),
        (Call::SockRecv, 4096, recv)
    );
    assert_eq!((s[3].call, s[3].event), (Call::SockSend, send));
    assert_eq!(s[3].bufs, [b"hello".to_vec()]);
    assert_eq!(s[4].call, Call::UdpSend);
    assert_eq!(s[4].args[..3], [u64::from(u.raw()), 0x0a01_0203, 53]);
    assert_eq!(s[4].bufs, [b"datagram".to_vec()]);
    // An accept completes with the connection's handle.
    fake::complete(accept, Status::Ok, 0, Value::Word(9));
    let conn = net::accepted(event::retire_word(accept).unwrap()).unwrap();
    assert_eq!(conn.raw(), 9);
    // Closing cancels what waits on the socket, and the handle is gone.
    c.close().unwrap();
    assert_eq!(event::retire_vec(recv).unwrap().status, Status::Cancelled);
    assert_eq!(c.recv(1), Err(Status::BadHandle));
    assert_eq!(c.close(), Err(Status::BadHandle));
    assert_eq!(net::stats().unwrap().sockets, 3);
}

#[test]
fn socket_calls_refuse_bad_words_by_name() {
    use crate::net::{Buffers, Conn, Listener, Udp};
    assert_eq!(
        Listener::listen(0, 1, Buffers::Small),
        Err(Status::InvalidArgument)
    );
    assert_eq!(
        Listener::listen(80, 0, Buffers::Small),
        Err(Status::InvalidArgument)
    );
    assert_eq!(
        Listener::listen(80, crate::net::MAX_BACKLOG + 1, Buffers::Small),
        Err(Status::InvalidArgument)
    );
    assert_eq!(Udp::bind(0), Err(Status::InvalidArgument));
    let l = Listener::listen(80, 1, Buffers::Small).unwrap();
    let u = Udp::bind(7).unwrap();
    let (c, _) = Conn::connect([192, 0, 2, 1], 1).unwrap();
    assert_eq!(
        Conn::connect([192, 0, 2, 1], 0).err(),
        Some(Status::InvalidArgument)
    );
    assert_eq!(c.recv(0), Err(Status::BadLength));
    assert_eq!(c.recv(abi::MAX_BUFFER + 1), Err(Status::BadLength));
    assert_eq!(c.send(&[]), Err(Status::BadLength));
    let too_big = std::vec![0u8; abi::MAX_BUFFER + 1];
    assert_eq!(c.send(&too_big), Err(Status::BadLength));
    assert_eq!(u.send([1, 2, 3, 4], 5, &too_big), Err(Status::BadLength));
    assert_eq!(u.send([1, 2, 3, 4], 0, b"x"), Err(Status::InvalidArgument));
    // A handle of the wrong kind is no handle for the call.
    assert_eq!(Conn::from_raw(l.raw()).recv(1), Err(Status::BadHandle));
    assert_eq!(
        Udp::from_raw(l.raw()).send([1, 2, 3, 4], 5, b"x"),
        Err(Status::BadHandle)
    );
    // Raw words the typed wrappers cannot make: a listen flag other than
    // 0 or 1, an address wider than 32 bits, a handle wider than 32 bits.
    let raw = |c: Call, a: [u64; 6]| crate::sys::call(c, a).map(|_| ());
    assert_eq!(
        raw(Call::TcpListen, [81, 1, 2, 0, 0, 0]),
        Err(Status::InvalidArgument)
    );
    assert_eq!(
        raw(Call::TcpConnect, [1 << 32, 80, 0, 0, 0, 0]),
        Err(Status::InvalidArgument)
    );
    assert_eq!(
        raw(Call::SockClose, [1 << 32, 0, 0, 0, 0, 0]),
        Err(Status::BadHandle)
    );
}

#[test]
fn the_network_going_away_ends_sockets_with_net_down_and_an_image_without_it_says_so() {
    use crate::net::{self, Buffers, Listener};
    let l = Listener::listen(80, 4, Buffers::Small).unwrap();
    let accept = l.accept().unwrap();
    fake::set_network(fake::Network::Down);
    let r = event::retire_word(accept).unwrap();
    assert!(net::is_net_down(&r));
    assert_eq!(net::accepted(r), Err(Status::Remote));
    assert_eq!(l.accept(), Err(Status::NetDown));
    assert_eq!(
        Listener::listen(80, 4, Buffers::Small),
        Err(Status::NetDown)
    );
    assert_eq!(net::stats(), Err(Status::NetDown));
    fake::set_network(fake::Network::Up);
    assert_eq!(l.accept(), Err(Status::BadHandle), "the old handle is gone");
    fake::set_network(fake::Network::Absent);
    assert_eq!(
        Listener::listen(80, 4, Buffers::Small),
        Err(Status::NoNetwork)
    );
    assert_eq!(net::stats(), Err(Status::NoNetwork));
    assert_eq!(Status::NoNetwork.text(), "this image has no networking");
}

#[test]
fn datagrams_and_counters_decode() {
    use crate::net::{Datagram, Stats};
    let d = Datagram::parse(&[192, 0, 2, 1, 0x39, 0x30, b'h', b'i']).unwrap();
    assert_eq!(
        (d.ip, d.port, d.payload),
        ([192, 0, 2, 1], 12345, &b"hi"[..])
    );
    assert_eq!(Datagram::parse(&[1, 2, 3, 4, 5]), None);
    let s = Stats::from_counters(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    assert_eq!((s.sockets, s.tx_gso, s.port_events), (1, 6, 13));
    assert_eq!((s.half_open, s.half_open_reaped), (14, 15));
    // An older kernel's 13 counters: the later ones read 0.
    let old = Stats::from_counters(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    assert_eq!((old.port_events, old.half_open_reaped), (13, 0));
    assert_eq!(Stats::from_counters(&[5]).polls, 0);
}

#[test]
fn permission_words_go_as_nul_ended_words_and_bad_ones_never_leave() {
    use crate::xenstore::{self, Tx};
    let e = xenstore::set_perms("data/x", &["n5", "r0"], Tx(7)).unwrap();
    let s = fake::started();
    let last = s.last().unwrap();
    assert_eq!((last.call, last.event), (Call::XsSetPerms, e));
    assert_eq!(last.bufs, [b"data/x".to_vec(), b"n5\0r0\0".to_vec()]);
    assert_eq!(last.args[4], 7);
    let before = fake::started().len();
    for bad in [&[][..], &["x5"], &["r"], &["n5\0r0"]] {
        assert_eq!(
            xenstore::set_perms("data/x", bad, Tx::NONE),
            Err(Status::InvalidArgument),
            "{bad:?}"
        );
    }
    let many = ["r1"; abi::MAX_PERMS + 1];
    assert_eq!(
        xenstore::set_perms("data/x", &many, Tx::NONE),
        Err(Status::InvalidArgument)
    );
    assert_eq!(fake::started().len(), before, "no call was made");
}

#[test]
fn a_wait_with_a_timeout_says_which_came_first_and_leaves_no_beep() {
    let live = fake::live_events();
    let start = time::now().unwrap();
    let soon = event::beep(start + 5 * MS).unwrap();
    assert_eq!(event::wait_timeout(soon, 50 * MS), Ok(true));
    assert!(event::retire_word(soon).unwrap().is_ok());
    let late = event::beep(time::now().unwrap() + 500 * MS).unwrap();
    assert_eq!(event::wait_timeout(late, 20 * MS), Ok(false));
    // Still the caller's, still pending.
    assert_eq!(event::retire_word(late), Err(Status::NotComplete));
    event::cancel(late).unwrap();
    let _ = event::retire_word(late);
    assert_eq!(fake::live_events(), live, "the timeouts' beeps are gone");
}

#[test]
fn an_exit_status_reads_as_a_person_would_say_it() {
    use crate::process::ExitStatus;
    assert_eq!(ExitStatus::Code(0).to_string(), "exit 0");
    assert_eq!(ExitStatus::Code(-1).to_string(), "exit -1");
    assert_eq!(ExitStatus::Faulted(14).to_string(), "fault 14");
}

#[test]
fn list_names_every_unretired_event_by_state() {
    let before = event::list().unwrap();
    let t = time::now().unwrap();
    let done = event::beep(t).unwrap();
    let waiting = event::beep(t + 1000 * MS).unwrap();
    let dropped = event::beep(t + 2000 * MS).unwrap();
    event::cancel(dropped).unwrap();
    let l = event::list().unwrap();
    assert!(l.completed.contains(&done), "{l:?}");
    assert!(l.pending.contains(&waiting));
    assert!(l.cancelled.contains(&dropped));
    // More than the first ask's room: the kernel says what it needs.
    let many: Vec<Event> = (0..100)
        .map(|i| event::beep(t + (5000 + i) * MS).unwrap())
        .collect();
    let l = event::list().unwrap();
    assert_eq!(l.pending.len(), before.pending.len() + 1 + many.len());
    for e in many.iter().chain([&waiting, &dropped]) {
        let _ = event::cancel(*e);
        let _ = event::retire_empty(*e);
    }
    let _ = event::retire_word(done);
    assert_eq!(event::list().unwrap(), before);
}

#[test]
fn a_shutdown_event_in_an_or_tree_says_what_was_asked() {
    use crate::shutdown::{self, Kind};
    let stop = shutdown::event().unwrap();
    let started = fake::started();
    assert_eq!(started.last().map(|s| s.call), Some(Call::ShutdownEvent));
    let work = time::beep_in(60_000 * MS).unwrap();
    // Still pending: nothing is retired, it stays usable.
    assert_eq!(shutdown::poll(stop), Ok(None));
    fake::complete(stop, Status::Ok, 0, Value::Word(abi::shutdown::REBOOT));
    let woke = event::wait(&Tree::any([stop, work])).unwrap();
    assert_eq!(woke, [stop]);
    assert_eq!(shutdown::poll(stop), Ok(Some(Kind::Reboot)));
    // Retired: the id is dead.
    assert_eq!(shutdown::poll(stop), Err(Status::UnknownEvent));
    // A word that names no kind is refused, not guessed.
    let odd = shutdown::event().unwrap();
    fake::complete(odd, Status::Ok, 0, Value::Word(7));
    assert_eq!(shutdown::wait(odd), Err(Status::InvalidArgument));
    assert_eq!(Kind::Poweroff.to_string(), "power off");
}
