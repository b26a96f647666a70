//! A hostile peer owns the shared pages: it writes whatever it likes into the indices,
//! orders, liveness and notify bytes, the grant list and the ring data, between the
//! steps of our end, which polls for messages and sends its own.
//!
//! Two set-ups: our end is the guest (vchan server + `Caller`, the page set up properly,
//! then scribbled on), or the daemon (vchan client + `Responder`, attaching to a page
//! whose header and grants come straight from the input).
//!
//! Asserts: no panic; our end touches shared memory only at the header fields, the grant
//! list and inside the rings (the memory wrapper checks every access); messages it
//! delivers are bounded and re-encode within a frame; once broken it stays broken with
//! the same reason.
#![no_main]
// A list of allowed ranges that often holds one range is the point of `Guarded`.
#![allow(clippy::single_range_in_vec_init)]

use std::ops::Range;
use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rpc::layout::{GRANTS, HEADER_BYTES, PAGE_SIZE};
use rpc::{
    encode_reply, encode_request, Caller, Config, Error, HeapMem, Layout, Placement, Probe, Reply,
    ReplyBody, Request, Responder, SharedMem, Side, Status, Vchan, MAX_FRAME, MAX_IO,
};

/// Heap memory that panics on any access outside the regions our end may touch.
struct Guarded {
    mem: HeapMem,
    /// Where 32-bit loads/stores may go (indices, grants).
    words: Vec<Range<usize>>,
    /// Where byte operations may go (orders, liveness, notify).
    bytes: Vec<Range<usize>>,
    /// Where bulk copies may go (ring data; header initialisation).
    copies: Vec<Range<usize>>,
}

impl Guarded {
    fn check(&self, allowed: &[Range<usize>], off: usize, n: usize, what: &str) {
        let ok = allowed.iter().any(|r| off >= r.start && off + n <= r.end);
        assert!(ok, "{what} access at {off}+{n} outside the allowed regions");
    }
}

impl SharedMem for Guarded {
    fn size(&self) -> usize {
        self.mem.size()
    }
    fn load_u8(&self, off: usize) -> u8 {
        self.check(&self.bytes, off, 1, "u8");
        self.mem.load_u8(off)
    }
    fn store_u8(&self, off: usize, v: u8) {
        self.check(&self.bytes, off, 1, "u8");
        self.mem.store_u8(off, v)
    }
    fn fetch_or_u8(&self, off: usize, bits: u8) -> u8 {
        self.check(&self.bytes, off, 1, "u8");
        self.mem.fetch_or_u8(off, bits)
    }
    fn fetch_and_u8(&self, off: usize, bits: u8) -> u8 {
        self.check(&self.bytes, off, 1, "u8");
        self.mem.fetch_and_u8(off, bits)
    }
    fn load_u32_acquire(&self, off: usize) -> u32 {
        self.check(&self.words, off, 4, "u32");
        self.mem.load_u32_acquire(off)
    }
    fn store_u32_release(&self, off: usize, v: u32) {
        self.check(&self.words, off, 4, "u32");
        self.mem.store_u32_release(off, v)
    }
    fn copy_out(&self, off: usize, dst: &mut [u8]) {
        self.check(&self.copies, off, dst.len(), "copy");
        self.mem.copy_out(off, dst)
    }
    fn copy_in(&self, off: usize, src: &[u8]) {
        self.check(&self.copies, off, src.len(), "copy");
        self.mem.copy_in(off, src)
    }
}

type Mem = Arc<Guarded>;

/// The interface page and the separately granted rings, guarded for a layout (or, for a
/// page whose orders do not validate, only the header).
struct Pages {
    ctrl: Mem,
    left: Option<Mem>,
    right: Option<Mem>,
}

fn pages(layout: Option<Layout>) -> Pages {
    let mut copies = vec![0..HEADER_BYTES];
    let mut grants_end = GRANTS;
    let mut ext = |side| {
        let layout = layout?;
        match layout.placement(side) {
            Placement::InPage { offset } => {
                copies.push(offset..offset + layout.ring_size(side));
                None
            }
            Placement::Granted { first, pages } => {
                grants_end = grants_end.max(GRANTS + 4 * (first + pages));
                let size = layout.ring_size(side);
                Some(Arc::new(Guarded {
                    mem: HeapMem::new(size),
                    words: vec![],
                    bytes: vec![],
                    copies: vec![0..size],
                }))
            }
        }
    };
    let (left, right) = (ext(Side::Left), ext(Side::Right));
    let ctrl = Arc::new(Guarded {
        mem: HeapMem::new(PAGE_SIZE),
        words: vec![0..16, GRANTS..grants_end],
        bytes: vec![16..HEADER_BYTES],
        copies,
    });
    Pages { ctrl, left, right }
}

#[derive(Arbitrary, Debug)]
enum Setup {
    /// Our end is the guest; ring orders 10..=14 from these bytes.
    Server { left: u8, right: u8 },
    /// Our end is the daemon, attaching to a page with valid orders (10..=14) and
    /// liveness bytes, but whatever indices and notify bytes the peer left there.
    Client {
        left: u8,
        right: u8,
        indices: [u32; 4],
        notify: [u8; 2],
    },
    /// Our end is the daemon, attaching to this header and grant list.
    RawClient { header: [u8; 24], grants: [u32; 8] },
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// Overwrite one of the four indices.
    Index { which: u8, value: u32 },
    /// Overwrite one of the bytes at offsets 16..24 (orders, liveness, notify).
    Byte { which: u8, value: u8 },
    /// Produce bytes on the ring we read, the way a peer would (may overrun it).
    Produce { bytes: Vec<u8>, extra: u16 },
    /// Produce a well-formed frame (so that deep states are reached).
    Frame {
        event_id: u8,
        which: u8,
        status: u8,
        len: u16,
    },
    /// Consume bytes on the ring we write (may overrun it).
    Consume { n: u16 },
    /// Scribble on the ring we write.
    Scribble { at: u16, bytes: Vec<u8> },
    /// Our end polls for a message.
    Poll,
    /// Our end sends a message.
    Send { which: u8, len: u16 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    setup: Setup,
    steps: Vec<Step>,
}

/// Our end, whichever it is.
enum End {
    Caller(Caller<Mem>),
    Responder(Responder<Mem>),
}

fn request(which: u8, len: u16) -> Request {
    let path = rpc::Path::new("p").unwrap();
    let len = u32::from(len) % (MAX_IO as u32 + 1);
    match which % 4 {
        0 => Request::Ping,
        1 => Request::Random { len },
        2 => Request::FileRead {
            path,
            offset: 0,
            len,
        },
        _ => Request::FileWrite {
            path,
            offset: 0,
            flags: 0,
            data: vec![7; len as usize],
        },
    }
}

fn reply(event_id: u64, which: u8, status: u8, len: u16) -> Reply {
    let status = Status::ALL[usize::from(status) % Status::ALL.len()];
    let req = request(which, len);
    if status != Status::Ok {
        return Reply::err(event_id, req.op(), status);
    }
    let n = req.reply_data_limit() as usize;
    let body = match req {
        Request::Ping => ReplyBody::Ping,
        Request::Random { .. } => ReplyBody::Random(vec![1; n]),
        Request::FileRead { .. } => ReplyBody::FileRead(vec![2; n]),
        _ => ReplyBody::FileWrite { written: n as u32 },
    };
    Reply::ok(event_id, body)
}

/// Ring geometry of one side, for the peer's own writes (which bypass the guard).
fn ring(p: &Pages, layout: Layout, side: Side) -> (&HeapMem, usize, usize) {
    let size = layout.ring_size(side);
    match (layout.placement(side), side) {
        (Placement::InPage { offset }, _) => (&p.ctrl.mem, offset, size),
        (Placement::Granted { .. }, Side::Left) => (&p.left.as_ref().unwrap().mem, 0, size),
        (Placement::Granted { .. }, Side::Right) => (&p.right.as_ref().unwrap().mem, 0, size),
    }
}

fn put_ring(mem: &HeapMem, base: usize, size: usize, at: u32, bytes: &[u8]) {
    for (i, b) in bytes.iter().take(size).enumerate() {
        let idx = (at as usize + i) & (size - 1);
        mem.copy_in(base + idx, &[*b]);
    }
}

/// Our end as the guest: a properly set-up server page.
fn serve(left: u8, right: u8) -> Option<(Pages, Layout, End)> {
    let layout = Layout::new(10 + u16::from(left % 5), 10 + u16::from(right % 5)).ok()?;
    let p = pages(Some(layout));
    let grants: Vec<u32> = (0..layout.grant_count() as u32).collect();
    let v = Vchan::server(
        layout,
        p.ctrl.clone(),
        p.left.clone(),
        p.right.clone(),
        &grants,
    )
    .expect("valid set-up");
    Some((p, layout, End::Caller(Caller::new(v, Config::default()))))
}

/// Our end as the daemon, attaching to a page holding `header` and `grants`.
fn attach(header: [u8; 24], grants: [u32; 8]) -> Option<(Pages, Layout, End)> {
    let orders = (
        u16::from_le_bytes([header[16], header[17]]),
        u16::from_le_bytes([header[18], header[19]]),
    );
    let layout = Layout::new(orders.0, orders.1).ok();
    if layout.is_some_and(|l| l.order(Side::Left) > 14 || l.order(Side::Right) > 14) {
        return None; // valid but large: keep iterations fast
    }
    let p = pages(layout);
    p.ctrl.mem.copy_in(0, &header);
    for (i, g) in grants.iter().enumerate() {
        p.ctrl.mem.store_u32_release(GRANTS + 4 * i, *g);
    }
    let Ok(probe) = Probe::read(&*p.ctrl) else {
        assert!(layout.is_none(), "a valid layout was refused");
        return None;
    };
    assert_eq!(Some(probe.layout), layout);
    let (v, _) = Vchan::client(
        probe.layout,
        p.ctrl.clone(),
        p.left.clone(),
        p.right.clone(),
    )
    .ok()?;
    Some((
        p,
        probe.layout,
        End::Responder(Responder::new(v, Config::default())),
    ))
}

fuzz_target!(|input: Input| {
    let setup = match input.setup {
        Setup::Server { left, right } => serve(left, right),
        Setup::Client {
            left,
            right,
            indices,
            notify,
        } => {
            let mut header = [0u8; 24];
            for (i, v) in indices.iter().enumerate() {
                header[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
            }
            header[16] = 10 + left % 5;
            header[18] = 10 + right % 5;
            header[20..24].copy_from_slice(&[2, 1, notify[0], notify[1]]);
            attach(header, [0; 8])
        }
        Setup::RawClient { header, grants } => attach(header, grants),
    };
    let Some((p, layout, mut end)) = setup else {
        return;
    };

    // The ring we read and the one we write, with their index offsets.
    let (rd, wr, rd_prod, wr_cons) = match end {
        End::Caller(_) => (Side::Left, Side::Right, 4, 8),
        End::Responder(_) => (Side::Right, Side::Left, 12, 0),
    };
    let mut broken: Option<Error> = None;
    let mut next_id = 0u64;
    for step in input.steps.into_iter().take(64) {
        let c = &p.ctrl.mem;
        let result: Result<(), Error> = match step {
            Step::Index { which, value } => {
                c.store_u32_release(usize::from(which % 4) * 4, value);
                continue;
            }
            Step::Byte { which, value } => {
                c.store_u8(16 + usize::from(which % 8), value);
                continue;
            }
            Step::Produce { bytes, extra } => {
                let (mem, base, size) = ring(&p, layout, rd);
                let prod = c.load_u32_acquire(rd_prod);
                put_ring(mem, base, size, prod, &bytes);
                let n = (bytes.len().min(size) as u32).wrapping_add(u32::from(extra % 4));
                c.store_u32_release(rd_prod, prod.wrapping_add(n));
                continue;
            }
            Step::Frame {
                event_id,
                which,
                status,
                len,
            } => {
                let mut bytes = Vec::new();
                match end {
                    End::Caller(_) => {
                        encode_reply(&reply(u64::from(event_id), which, status, len), &mut bytes)
                    }
                    End::Responder(_) => {
                        encode_request(u64::from(event_id), &request(which, len), &mut bytes)
                    }
                }
                .unwrap();
                let (mem, base, size) = ring(&p, layout, rd);
                let prod = c.load_u32_acquire(rd_prod);
                let n = bytes.len().min(size);
                put_ring(mem, base, size, prod, &bytes[..n]);
                c.store_u32_release(rd_prod, prod.wrapping_add(n as u32));
                continue;
            }
            Step::Consume { n } => {
                let cons = c.load_u32_acquire(wr_cons);
                c.store_u32_release(wr_cons, cons.wrapping_add(u32::from(n)));
                continue;
            }
            Step::Scribble { at, bytes } => {
                let (mem, base, size) = ring(&p, layout, wr);
                put_ring(mem, base, size, u32::from(at), &bytes);
                continue;
            }
            Step::Poll => match &mut end {
                End::Caller(caller) => caller.poll().map(|r| {
                    if let Some(r) = r {
                        if let Ok(body) = &r.result {
                            assert!(body.data_len() <= MAX_IO);
                        }
                        let mut again = Vec::new();
                        encode_reply(&r, &mut again).unwrap();
                        assert!(again.len() <= MAX_FRAME);
                    }
                }),
                End::Responder(responder) => responder.poll().map(|q| {
                    if let Some(q) = q {
                        let mut again = Vec::new();
                        encode_request(q.event_id, &q.request, &mut again).unwrap();
                        assert!(again.len() <= MAX_FRAME);
                    }
                }),
            },
            Step::Send { which, len } => match &mut end {
                End::Caller(caller) => {
                    next_id += 1;
                    caller.call(next_id % 8, &request(which, len))
                }
                End::Responder(responder) => responder.reply(&reply(next_id, which, 0, len)),
            },
        };
        let vchan_broken = match &end {
            End::Caller(x) => x.vchan().broken(),
            End::Responder(x) => x.vchan().broken(),
        };
        match (broken, result) {
            (Some(first), r) => assert_eq!(r, Err(first), "broken stays broken"),
            (None, Err(Error::Broken(r))) => {
                assert_eq!(vchan_broken, Some(r));
                broken = Some(Error::Broken(r));
            }
            (None, _) => assert_eq!(vchan_broken, None),
        }
    }
});
