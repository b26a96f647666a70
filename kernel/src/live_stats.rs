//! The live figures dom0 reads while the guest runs: one line of
//! `key=value` words (decimal counts, one space between words) that the
//! `control` service writes to the guest's `data/ethos/stats` in xenstore
//! (`apps/control.rs` says when), and `shadowdaemon status` parses.
//!
//! Formatted into a buffer of fixed size, [`LINE_MAX`], that every line
//! fits in (each count is at most `u64::MAX`, 20 digits), so writing the
//! figures never allocates and never cuts a word. Pure: it imports nothing
//! of the kernel.
//!
//! The words, in order: the kernel's uptime in ms (its clock, which stands
//! still while the domain is saved); events created, completed and
//! retired, processes woken and context switches (the counters the kernel
//! says at power-off); pool frames free, the domain's other frames (held
//! by the kernel and its processes) and frames given back to Xen; RPC
//! requests sent to the daemon and replies taken; and with networking,
//! the current device's frames received and sent. The keys are lowercase
//! ASCII and `_`, which is what the daemon's parser accepts.

/// The keys, in the order written, one space between them.
#[cfg(not(feature = "net"))]
pub const KEYS: &str = "uptime_ms created completed retired wakes switches \
                        frames_free frames_used ballooned rpc_sent rpc_answered";
/// The keys, in the order written, one space between them.
#[cfg(feature = "net")]
pub const KEYS: &str = "uptime_ms created completed retired wakes switches \
                        frames_free frames_used ballooned rpc_sent rpc_answered net_rx net_tx";

/// How many figures a line has.
pub const COUNT: usize = count_words(KEYS);

/// The longest line: the keys and their spaces, then for each one `=` and
/// at most 20 digits.
pub const LINE_MAX: usize = KEYS.len() + COUNT * 21;

// What shadowdaemon's parser accepts: at most 64 words, 1024 bytes.
const _: () = assert!(COUNT <= 64 && LINE_MAX <= 1024);

const fn count_words(keys: &str) -> usize {
    let bytes = keys.as_bytes();
    let mut n = 1;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            n += 1;
        }
        i += 1;
    }
    n
}

/// Writes `values` (in [`KEYS`]' order) as `key=value` words into `out`;
/// returns the line's length.
pub fn format(values: &[u64; COUNT], out: &mut [u8; LINE_MAX]) -> usize {
    // Every line fits (see LINE_MAX), and nothing here panics: the core
    // image carries no panic site for it.
    let mut len = 0;
    let mut figures = values.iter();
    let keys = KEYS.as_bytes();
    // A space ends a key, and so does the end of the keys (read as 0):
    // then its value.
    for i in 0..=keys.len() {
        let b = keys.get(i).copied().unwrap_or(0);
        if b != b' ' && b != 0 {
            if let Some(slot) = out.get_mut(len) {
                *slot = b;
            }
            len += 1;
            continue;
        }
        if let Some(slot) = out.get_mut(len) {
            *slot = b'=';
        }
        let v = figures.next().copied().unwrap_or(0);
        let mut digits = 1;
        let mut rest = v / 10;
        while rest > 0 {
            rest /= 10;
            digits += 1;
        }
        len += digits;
        // Lowest digit last.
        let mut rest = v;
        for d in 0..digits {
            if let Some(slot) = out.get_mut(len - d) {
                *slot = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
        }
        len += 1;
        if let Some(slot) = out.get_mut(len) {
            *slot = b;
        }
        len += (b == b' ') as usize;
    }
    len.min(LINE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::String;
    use std::vec::Vec;

    fn line(values: &[u64; COUNT]) -> String {
        let mut out = [0u8; LINE_MAX];
        let len = format(values, &mut out);
        String::from_utf8(out[..len].to_vec()).expect("ASCII")
    }

    #[test]
    fn writes_each_key_with_its_value_in_order() {
        let values: [u64; COUNT] = core::array::from_fn(|i| i as u64 * 7);
        let text = line(&values);
        let words: Vec<(&str, u64)> = text
            .split(' ')
            .map(|w| {
                let (k, v) = w.split_once('=').expect("key=value");
                (k, v.parse().expect("decimal"))
            })
            .collect();
        let keys: Vec<&str> = KEYS.split(' ').collect();
        assert_eq!(words.len(), COUNT);
        for (i, (k, v)) in words.iter().enumerate() {
            assert_eq!((*k, *v), (keys[i], values[i]), "{text}");
        }
    }

    #[test]
    fn the_core_images_line_reads_as_the_daemon_expects() {
        if cfg!(feature = "net") {
            return;
        }
        let values = [12_345, 40, 39, 38, 17, 21, 1_900, 148, 0, 3, 2];
        assert_eq!(
            line(&values),
            "uptime_ms=12345 created=40 completed=39 retired=38 wakes=17 switches=21 \
             frames_free=1900 frames_used=148 ballooned=0 rpc_sent=3 rpc_answered=2"
        );
    }

    #[test]
    fn the_largest_figures_fill_the_buffer_exactly() {
        let text = line(&[u64::MAX; COUNT]);
        assert_eq!(text.len(), LINE_MAX);
        assert!(text.starts_with("uptime_ms=18446744073709551615 created="));
        assert_eq!(line(&[0; COUNT]).matches("=0").count(), COUNT);
    }

    #[test]
    fn keys_are_words_the_daemon_accepts() {
        // shadowdaemon's stats parser: keys of 1 to 32 bytes of [a-z0-9_]
        // (its bounds on words and bytes are checked at build time above).
        for key in KEYS.split(' ') {
            assert!((1..=32).contains(&key.len()), "{key:?}");
            assert!(key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
        let mut keys: Vec<&str> = KEYS.split(' ').collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), COUNT, "a key twice");
    }
}
