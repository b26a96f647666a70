//! Property tests: encode/decode round trips for every message shape, canonical decoding
//! of arbitrary bytes, and random interleavings of partial reads and writes at the byte
//! and the message level.

mod common;

use proptest::prelude::*;

use common::{pair, Mem};
use rpc::layout::{CLI_NOTIFY, NOTIFY_WRITE, SRV_NOTIFY};
use rpc::{
    encode_reply, encode_request, ByteSource, Caller, Config, DirEntry, Error, FileInfo, FileKind,
    Frame, FrameDecoder, FrameKind, Name, Op, Path, Reply, ReplyBody, Request, Responder,
    SharedMem, Status,
};

fn path() -> impl Strategy<Value = Path> {
    "[^\0]{1,60}".prop_map(|s| Path::new(s).unwrap())
}

fn data(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn kind() -> impl Strategy<Value = FileKind> {
    prop_oneof![
        Just(FileKind::File),
        Just(FileKind::Dir),
        Just(FileKind::Symlink),
        Just(FileKind::Other)
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Ping),
        (0..=rpc::MAX_IO as u32).prop_map(|len| Request::Random { len }),
        (path(), any::<u64>(), 0..=rpc::MAX_IO as u32)
            .prop_map(|(path, offset, len)| Request::FileRead { path, offset, len }),
        (path(), any::<u64>(), 0u8..4, data(3000)).prop_map(|(path, offset, flags, data)| {
            Request::FileWrite {
                path,
                offset,
                flags,
                data,
            }
        }),
        path().prop_map(|path| Request::FileInfo { path }),
        path().prop_map(|path| Request::DirCreate { path }),
        (path(), any::<u32>()).prop_map(|(path, cursor)| Request::DirList { path, cursor }),
        path().prop_map(|path| Request::Remove { path }),
        (
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec(any::<[u8; 16]>(), 0..64)
        )
            .prop_map(|(seq, dropped, records)| Request::Trace {
                seq,
                dropped,
                records: records.concat(),
            }),
    ]
}

fn body() -> impl Strategy<Value = ReplyBody> {
    let entry = (kind(), "[^/\0]{1,30}")
        .prop_filter("not . or ..", |(_, n)| n != "." && n != "..")
        .prop_map(|(kind, n)| DirEntry {
            kind,
            name: Name::new(n).unwrap(),
        });
    prop_oneof![
        Just(ReplyBody::Ping),
        data(3000).prop_map(ReplyBody::Random),
        data(3000).prop_map(ReplyBody::FileRead),
        any::<u32>().prop_map(|written| ReplyBody::FileWrite { written }),
        (
            kind(),
            0u16..=0o7777,
            any::<u64>(),
            any::<i64>(),
            0u32..1_000_000_000
        )
            .prop_map(|(kind, perm, size, mtime_s, mtime_ns)| ReplyBody::FileInfo(
                FileInfo {
                    kind,
                    perm,
                    size,
                    mtime_s,
                    mtime_ns
                }
            )),
        Just(ReplyBody::DirCreate),
        (prop::collection::vec(entry, 0..40), any::<bool>())
            .prop_map(|(entries, done)| ReplyBody::DirList { entries, done }),
        Just(ReplyBody::Remove),
        Just(ReplyBody::Trace),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    let op = prop::sample::select(Op::ALL.to_vec());
    let status = prop::sample::select(Status::ALL[1..].to_vec());
    prop_oneof![
        (any::<u64>(), body()).prop_map(|(id, b)| Reply::ok(id, b)),
        (any::<u64>(), op, status).prop_map(|(id, op, s)| Reply::err(id, op, s)),
    ]
}

/// A slice source that hands out at most `chunk` bytes per call, cycling through sizes.
struct Chunked<'a> {
    rest: &'a [u8],
    sizes: Vec<usize>,
    turn: usize,
}

impl Chunked<'_> {
    fn limit(&mut self) -> usize {
        self.turn += 1;
        self.sizes[self.turn % self.sizes.len()]
    }
}

impl ByteSource for Chunked<'_> {
    fn take_exact(&mut self, dst: &mut [u8]) -> Result<bool, Error> {
        // Pretend the bytes are not there yet every other time, as a ring being filled
        // would.
        self.turn += 1;
        if self.turn & 1 == 0 || self.rest.len() < dst.len() {
            return Ok(false);
        }
        let n = dst.len();
        dst.copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(true)
    }

    fn take_some(&mut self, dst: &mut [u8]) -> Result<usize, Error> {
        let n = dst.len().min(self.rest.len()).min(self.limit());
        dst[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

/// Decodes every frame from `bytes`, fed in chunks; stops at the first error.
fn decode_all(kind: FrameKind, bytes: &[u8], sizes: Vec<usize>) -> (Vec<Frame>, Result<(), Error>) {
    let mut src = Chunked {
        rest: bytes,
        sizes,
        turn: 0,
    };
    let mut dec = FrameDecoder::new(kind);
    let mut frames = Vec::new();
    // Each call either takes bytes or reports the source dry; bounded by bytes + calls.
    for _ in 0..(bytes.len() + 2) * 4 {
        match dec.poll(&mut src, |_| Ok(())) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) if src.rest.is_empty() => break,
            Ok(None) => {}
            Err(e) => return (frames, Err(e)),
        }
    }
    (frames, Ok(()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn requests_round_trip(reqs in prop::collection::vec((any::<u64>(), request()), 1..8),
                           sizes in prop::collection::vec(1usize..64, 1..8)) {
        let mut bytes = Vec::new();
        for (id, r) in &reqs {
            encode_request(*id, r, &mut bytes).unwrap();
        }
        let (frames, end) = decode_all(FrameKind::Request, &bytes, sizes);
        prop_assert_eq!(end, Ok(()));
        let got: Vec<(u64, Request)> =
            frames.into_iter().map(|f| f.into_request().unwrap()).collect();
        prop_assert_eq!(got, reqs);
    }

    #[test]
    fn replies_round_trip(replies in prop::collection::vec(reply(), 1..8),
                          sizes in prop::collection::vec(1usize..64, 1..8)) {
        let mut bytes = Vec::new();
        for r in &replies {
            encode_reply(r, &mut bytes).unwrap();
        }
        let (frames, end) = decode_all(FrameKind::Reply, &bytes, sizes);
        prop_assert_eq!(end, Ok(()));
        let got: Vec<Reply> = frames.into_iter().map(|f| f.into_reply().unwrap()).collect();
        prop_assert_eq!(got, replies);
    }

    /// Whatever decodes, re-encodes to exactly the same bytes: there is one encoding of
    /// each message, so nothing can be smuggled in alternative spellings.
    #[test]
    fn arbitrary_bytes_decode_canonically(bytes in data(200), reply_kind in any::<bool>()) {
        let kind = if reply_kind { FrameKind::Reply } else { FrameKind::Request };
        let (frames, _) = decode_all(kind, &bytes, vec![usize::MAX]);
        let mut again = Vec::new();
        for f in frames {
            match kind {
                FrameKind::Request => {
                    if let Ok((id, r)) = f.into_request() {
                        encode_request(id, &r, &mut again).unwrap();
                    } else {
                        break;
                    }
                }
                FrameKind::Reply => {
                    if let Ok(r) = f.into_reply() {
                        encode_reply(&r, &mut again).unwrap();
                    } else {
                        break;
                    }
                }
            }
        }
        prop_assert_eq!(&bytes[..again.len()], &again[..]);
    }
}

#[derive(Clone, Debug)]
enum ByteStep {
    Write(usize),
    Read(usize),
    Recv(usize),
}

fn byte_step() -> impl Strategy<Value = ByteStep> {
    prop_oneof![
        (0usize..3000).prop_map(ByteStep::Write),
        (0usize..3000).prop_map(ByteStep::Read),
        (0usize..1024).prop_map(ByteStep::Recv),
    ]
}

fn orders() -> impl Strategy<Value = (u16, u16)> {
    prop::sample::select(vec![(10, 11), (11, 10), (12, 10), (12, 13), (13, 11)])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random partial writes (client → server) and reads: the bytes come out in order,
    /// never more than a ring's worth is outstanding, and a reader that came up short
    /// always leaves its "kick me on write" bit set.
    #[test]
    fn partial_reads_and_writes_keep_the_stream(
        (l, r) in orders(),
        steps in prop::collection::vec(byte_step(), 1..80),
        server_writes in any::<bool>(),
    ) {
        let (server, client, pages) = pair(l, r);
        let (mut writer, mut reader, ask_off) = if server_writes {
            (server, client, SRV_NOTIFY)
        } else {
            (client, server, CLI_NOTIFY)
        };
        let size = writer.write_ring_size();
        let (mut sent, mut got) = (0usize, Vec::new());
        let byte = |i: usize| (i * 131 % 251) as u8;
        for step in steps {
            match step {
                ByteStep::Write(n) => {
                    let chunk: Vec<u8> = (sent..sent + n).map(byte).collect();
                    let t = writer.write(&chunk).unwrap();
                    sent += t.bytes;
                    prop_assert!(sent - got.len() <= size);
                    if t.bytes < n {
                        prop_assert_eq!(sent - got.len(), size, "a short write means a full ring");
                    }
                }
                ByteStep::Read(n) => {
                    let mut buf = vec![0u8; n];
                    let t = reader.read(&mut buf).unwrap();
                    got.extend_from_slice(&buf[..t.bytes]);
                    if t.bytes < n {
                        prop_assert_eq!(pages.ctrl.load_u8(ask_off) & NOTIFY_WRITE, NOTIFY_WRITE);
                    }
                }
                ByteStep::Recv(n) => {
                    let mut buf = vec![0u8; n];
                    let avail = sent - got.len();
                    match reader.recv(&mut buf).unwrap() {
                        Some(_) => got.extend_from_slice(&buf),
                        None => prop_assert!(avail < n),
                    }
                }
            }
        }
        let mut rest = vec![0u8; size];
        let t = reader.read(&mut rest).unwrap();
        got.extend_from_slice(&rest[..t.bytes]);
        prop_assert_eq!(got.len(), sent);
        let want: Vec<u8> = (0..sent).map(byte).collect();
        prop_assert_eq!(got, want);
    }
}

#[derive(Clone, Debug)]
enum MsgStep {
    Call(Request),
    CallerPoll,
    ResponderPoll,
    ResponderFlush,
    CallerFlush,
}

fn msg_step() -> impl Strategy<Value = MsgStep> {
    prop_oneof![
        request().prop_map(MsgStep::Call),
        Just(MsgStep::CallerPoll),
        Just(MsgStep::ResponderPoll),
        Just(MsgStep::ResponderFlush),
        Just(MsgStep::CallerFlush),
    ]
}

fn answer(id: u64, req: &Request) -> Reply {
    match req {
        Request::Random { len } => Reply::ok(id, ReplyBody::Random(vec![id as u8; *len as usize])),
        Request::FileRead { len, .. } => {
            Reply::ok(id, ReplyBody::FileRead(vec![1; (*len as usize).min(2000)]))
        }
        Request::FileWrite { data, .. } => Reply::ok(
            id,
            ReplyBody::FileWrite {
                written: data.len() as u32,
            },
        ),
        other => Reply::err(id, other.op(), Status::NotFound),
    }
}

fn responder_step(responder: &mut Responder<Mem>, held: &mut Vec<Reply>) {
    if let Some(r) = held.first() {
        match responder.reply(r) {
            Ok(()) => {
                held.remove(0);
            }
            Err(Error::Full) => return,
            Err(e) => panic!("{e}"),
        }
    }
    if let Some(inc) = responder.poll().unwrap() {
        held.push(answer(inc.event_id, &inc.request));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random interleavings of calls, polls and flushes on both sides: every request gets
    /// exactly its reply, whatever the ring sizes and the order of events.
    #[test]
    fn messages_survive_any_interleaving(
        (l, r) in orders(),
        steps in prop::collection::vec(msg_step(), 1..60),
    ) {
        let (server, client, _pages) = pair(l, r);
        let config = Config { outbox_bytes: 0, max_in_flight: 8 };
        let mut caller = Caller::new(server, config);
        let mut responder = Responder::new(client, config);
        let mut sent = std::collections::BTreeMap::new();
        let mut held = Vec::new();
        let mut next = 0u64;
        let mut got = Vec::new();
        for step in steps {
            match step {
                MsgStep::Call(req) => match caller.call(next, &req) {
                    Ok(()) => {
                        sent.insert(next, req);
                        next += 1;
                    }
                    Err(Error::Full | Error::TooManyInFlight) => {}
                    Err(e) => panic!("{e}"),
                },
                MsgStep::CallerPoll => got.extend(caller.poll().unwrap()),
                MsgStep::CallerFlush => caller.flush().unwrap(),
                MsgStep::ResponderPoll => responder_step(&mut responder, &mut held),
                MsgStep::ResponderFlush => responder.flush().unwrap(),
            }
        }
        // Drain: bounded, each round moves bytes or we are done.
        for _ in 0..10_000 {
            if got.len() == sent.len() {
                break;
            }
            got.extend(caller.poll().unwrap());
            responder_step(&mut responder, &mut held);
        }
        prop_assert_eq!(got.len(), sent.len());
        for reply in got {
            prop_assert_eq!(&reply, &answer(reply.event_id, &sent[&reply.event_id]));
        }
        prop_assert_eq!(caller.in_flight(), 0);
    }
}
