//! Arbitrary bytes into the frame decoder, as requests or as replies, fed in
//! fuzzer-chosen chunk sizes (as a ring being filled would deliver them).
//!
//! Asserts: no panic; every frame it delivers has a payload within the op's bounds (so
//! at most `MAX_PAYLOAD`); anything that parses re-encodes to exactly the bytes it came
//! from (one spelling per message); a violation is sticky.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc::{
    encode_reply, encode_request, ByteSource, Error, FrameDecoder, FrameKind, Status, MAX_PAYLOAD,
};

/// A byte slice handed out in chunks whose sizes come from the input.
struct Chunked<'a> {
    rest: &'a [u8],
    taken: usize,
    sizes: &'a [u8],
    turn: usize,
}

impl Chunked<'_> {
    fn limit(&mut self) -> usize {
        self.turn += 1;
        match self.sizes.len() {
            0 => usize::MAX,
            n => usize::from(self.sizes[self.turn % n]) * 37 + 1,
        }
    }

    fn take(&mut self, dst: &mut [u8]) {
        let n = dst.len();
        dst.copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        self.taken += n;
    }
}

impl ByteSource for Chunked<'_> {
    fn take_exact(&mut self, dst: &mut [u8]) -> Result<bool, Error> {
        if self.rest.len() < dst.len() {
            return Ok(false);
        }
        self.take(dst);
        Ok(true)
    }

    fn take_some(&mut self, dst: &mut [u8]) -> Result<usize, Error> {
        let n = dst.len().min(self.rest.len()).min(self.limit());
        self.take(&mut dst[..n]);
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let kind = if mode & 1 == 0 {
        FrameKind::Request
    } else {
        FrameKind::Reply
    };
    let n_sizes = usize::from(mode >> 1).min(rest.len());
    let (sizes, bytes) = rest.split_at(n_sizes);
    let mut src = Chunked {
        rest: bytes,
        taken: 0,
        sizes,
        turn: 0,
    };
    let mut dec = FrameDecoder::new(kind);
    let mut frame_start = 0;
    // Every call takes at least one byte or finds the source dry: bounded.
    for _ in 0..=bytes.len() + 1 {
        let before = src.taken;
        match dec.poll(&mut src, |_| Ok(())) {
            Ok(Some(frame)) => {
                let h = frame.header;
                assert_eq!(frame.payload.len(), h.len as usize);
                assert!(frame.payload.len() <= MAX_PAYLOAD);
                let bounds = match (kind, h.status) {
                    (FrameKind::Request, _) => h.op.request_len(),
                    (FrameKind::Reply, Status::Ok) => h.op.reply_len(),
                    (FrameKind::Reply, _) => 0..=0,
                };
                assert!(bounds.contains(&frame.payload.len()));
                let mut again = Vec::new();
                let parsed = match kind {
                    FrameKind::Request => frame
                        .into_request()
                        .map(|(id, r)| encode_request(id, &r, &mut again).unwrap()),
                    FrameKind::Reply => frame
                        .into_reply()
                        .map(|r| encode_reply(&r, &mut again).unwrap()),
                };
                match parsed {
                    Ok(()) => assert_eq!(again, bytes[frame_start..src.taken]),
                    Err(reason) => {
                        // The owner records a payload violation; the decoder reports it
                        // from then on.
                        let e = dec.fail(reason);
                        assert_eq!(dec.poll(&mut src, |_| Ok(())).unwrap_err(), e);
                        return;
                    }
                }
                frame_start = src.taken;
            }
            // Dry: the rest is a partial header (or nothing).
            Ok(None) if src.taken == before => return,
            Ok(None) => {}
            Err(e) => {
                assert!(matches!(e, Error::Broken(_)));
                assert_eq!(dec.poll(&mut src, |_| Ok(())), Err(e), "sticky");
                return;
            }
        }
    }
    panic!("decoder made no progress");
});
