//! The boot options: [`TABLE`] is the one list of every option the kernel
//! reads from its command line, and [`Options::get`] the only way to read
//! one, so an option cannot be read without being documented here.
//! `docs/boot-options.md` is rendered from the table (a host test checks
//! it is current).
//!
//! The line is strict: every word before a `--` word is an option, checked
//! against the table; [`Options::problems`] names each word that is not a
//! valid option for this image, and says what the kernel does instead.
//! Words after `--` are the first program's arguments. There is no other
//! kind of word: xl passes the config's `extra=` (after `root=`, if the
//! config has one) and nothing else, so a word this kernel does not know,
//! with or without `=`, is a mistake worth a line, not someone else's option.

use crate::cmdline::{position_in, split, Cmdline};
use core::fmt;

/// Which image this kernel is (scripts/build-guest builds three from one
/// source, with different cargo features).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    /// `guest`: no networking.
    Core,
    /// `guest-net`: netfront and smoltcp.
    Net,
    /// `guest-test`: networking, the test apps and hal's test hooks.
    Test,
}

/// The images an option exists on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Images {
    All,
    /// The two with networking.
    Networked,
}

impl Images {
    /// Built without feature `net` (the core image), the crate has no
    /// networked image: then the address options are on none, and their
    /// parsers are left out (host tests have them).
    pub fn has(self, image: Image) -> bool {
        self == Images::All || (cfg!(any(test, feature = "net")) && image != Image::Core)
    }
}

/// What values an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One of the words of [`Spec::values`] (separated by `|`), or, on the
    /// guest-test image, of [`Spec::test_values`].
    OneOf,
    /// A bare word, no value.
    Flag,
    /// Any non-empty word (a program's name: the boot archive decides).
    Name,
    /// `A.B.C.D/PREFIX`, PREFIX 1..=32.
    Ipv4Prefix,
    /// `A.B.C.D`.
    Ipv4,
}

/// Every option, in [`TABLE`]'s order (the table is indexed by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opt {
    LogLevel,
    Init,
    App,
    Rpc,
    Trace,
    Ip,
    Gw,
    Tso,
    TestFault,
    Help,
}

/// One row of the table.
///
/// Its fields are written by name in [`TABLE`] (`row!`), but kept as the
/// one line `ethos.help` prints, `KEY[=VALUES][ (guest-test: TEST)]
/// [default DEFAULT[; IMAGES]] MEANING` (images when not all all), and where
/// each field sits in it: ten rows of five `&str`s and a formatter for the
/// line would cost the image most of a kilobyte more.
#[derive(Debug)]
pub struct Spec {
    pub opt: Opt,
    pub kind: Kind,
    pub images: Images,
    /// A bad value powers the domain off instead of falling back on the
    /// default: for what to run, where doing something else than asked
    /// would not be safe.
    pub stops: bool,
    line: &'static str,
    /// Where the key, values, test values, default and meaning are in
    /// `line`: start and length.
    spans: [[u8; 2]; 5],
    /// The fields as written, to check the accessors (host only).
    #[cfg(test)]
    written: [&'static str; 5],
    /// The documentation's longer text (host only: docs/boot-options.md).
    #[cfg(test)]
    pub detail: &'static str,
}

/// How `ethos.help` names an option's images (nothing for all).
macro_rules! images_name {
    (All) => {
        ""
    };
    (Networked) => {
        "; guest-net, guest-test"
    };
}

/// A row of [`TABLE`], its fields by name (`values` is left out for a
/// flag, `test_values` where there are none).
macro_rules! row {
    {
        opt: $opt:ident,
        kind: $kind:ident,
        images: $images:ident,
        stops: $stops:expr,
        key: $key:literal,
        $(values: $values:literal,)?
        $(test_values: $test_values:literal,)?
        default: $default:literal,
        meaning: $meaning:literal,
        detail: $detail:literal $(,)?
    } => {
        Spec {
            opt: Opt::$opt,
            kind: Kind::$kind,
            images: Images::$images,
            stops: $stops,
            spans: spans(
                $key,
                concat!("" $(, $values)?),
                concat!("" $(, $test_values)?),
                $default,
                images_name!($images),
                $meaning,
            ),
            line: concat!(
                $key,
                $("=", $values,)?
                $(" (guest-test: ", $test_values, ")",)?
                " [default ",
                $default,
                images_name!($images),
                "] ",
                $meaning
            ),
            #[cfg(test)]
            written: [
                $key,
                concat!("" $(, $values)?),
                concat!("" $(, $test_values)?),
                $default,
                $meaning,
            ],
            #[cfg(test)]
            detail: $detail,
        }
    };
}

/// Where each field of a row sits in its line, from the pieces `row!`
/// joins, in its order (computed when compiling; a host test reads every
/// field back).
const fn spans(
    key: &str,
    values: &str,
    test: &str,
    default: &str,
    images: &str,
    meaning: &str,
) -> [[u8; 2]; 5] {
    let values_at = key.len() + if values.is_empty() { 0 } else { "=".len() };
    let test_at = values_at
        + values.len()
        + if test.is_empty() {
            0
        } else {
            " (guest-test: ".len()
        };
    let default_at =
        test_at + test.len() + if test.is_empty() { 0 } else { ")".len() } + " [default ".len();
    let meaning_at = default_at + default.len() + images.len() + "] ".len();
    assert!(meaning_at + meaning.len() < 256, "a row's line is too long");
    [
        [0, key.len() as u8],
        [values_at as u8, values.len() as u8],
        [test_at as u8, test.len() as u8],
        [default_at as u8, default.len() as u8],
        [meaning_at as u8, meaning.len() as u8],
    ]
}

/// Every option the kernel reads. The meanings go on the console
/// (`ethos.help`): keep them short, the image pays for every byte; the
/// details are the documentation's only.
pub static TABLE: [Spec; 10] = [
    row! {
        opt: LogLevel,
        kind: OneOf,
        images: All,
        stops: false,
        key: "loglevel",
        values: "off|error|warn|info|debug|trace",
        default: "info",
        meaning: "console log level",
        detail: "From nothing (`off`) to everything (`trace`); each level includes \
                 those before it. The lines about bad boot options are warnings \
                 (`warn`).",
    },
    row! {
        opt: Init,
        kind: Name,
        images: All,
        stops: true,
        key: "ethos.init",
        values: "NAME",
        default: "demo",
        meaning: "first program, of the boot archive",
        detail: "Program NAME of the boot archive (the xl config's `ramdisk=`) is the \
                 first process, with every right; its arguments are the words after \
                 ` -- `, e.g. `ethos.init=hello -- one two`. Without it and without \
                 `ethos.app`, the `demo` program. A name the archive does not have \
                 powers the domain off with a line naming the programs it has.",
    },
    row! {
        opt: App,
        kind: OneOf,
        images: All,
        stops: true,
        key: "ethos.app",
        values: "none",
        test_values: "stale-page",
        default: "unset",
        meaning: "linked-in app, not a program",
        detail: "`none` runs no first process (only the kernel's services); the \
                 guest-test image also has `stale-page` (what \
                 `ethos.test_fault=stale-page` runs). Ignored when `ethos.init` is \
                 given.",
    },
    row! {
        opt: Rpc,
        kind: OneOf,
        images: All,
        stops: false,
        key: "ethos.rpc",
        values: "on|off",
        default: "on",
        meaning: "RPC channel to dom0's shadowdaemon",
        detail: "The daemon serves files and random bytes (`ethos::rpc`); `off` \
                 offers no channel.",
    },
    row! {
        opt: Trace,
        kind: OneOf,
        images: All,
        stops: false,
        key: "ethos.trace",
        values: "on|off",
        default: "off",
        meaning: "event timeline to dom0 (trace.json)",
        detail: "`on` records every event's create, complete, block, wake, retire and \
                 cancel, context switches, system calls and upcalls, and ships them to the \
                 shadowdaemon, which writes `trace.json` (Chrome/Perfetto trace-event \
                 format) into the guest's folder; `shadowdaemon trace-svg` draws it.",
    },
    row! {
        opt: Ip,
        kind: Ipv4Prefix,
        images: Networked,
        stops: false,
        key: "ethos.ip",
        values: "A.B.C.D/PREFIX",
        default: "none",
        meaning: "IPv4 address (needs a vif=)",
        detail: "The guest's address and network (PREFIX 1..=32): networking starts \
                 only with it, on the domain's first network device (the xl config's \
                 `vif=`). With no device the guest says so after 5 s and powers off.",
    },
    row! {
        opt: Gw,
        kind: Ipv4,
        images: Networked,
        stops: false,
        key: "ethos.gw",
        values: "A.B.C.D",
        default: "none",
        meaning: "default gateway",
        detail: "Inside the network of `ethos.ip` and not the guest itself, or the \
                 guest starts no networking (and says why).",
    },
    row! {
        opt: Tso,
        kind: OneOf,
        images: Networked,
        stops: false,
        key: "ethos.tso",
        values: "on|off",
        default: "on",
        meaning: "TCP segmentation offload",
        detail: "Outgoing TCP segments are joined into GSO packets of up to 64 KiB \
                 where netback offers it (it does); `off` sends every segment alone \
                 (to compare, or to rule it out).",
    },
    row! {
        opt: TestFault,
        kind: OneOf,
        images: All,
        stops: false,
        key: "ethos.test_fault",
        values: "panic",
        test_values: "pagefault|ud|divide|stale-page",
        default: "none",
        meaning: "fault on purpose (tests)",
        detail: "For the rig: the kernel commits a fault, to show it is reported and \
                 Xen sees a crash. `panic` calls `panic!`; the guest-test image, \
                 which has the hooks, can also read an unmapped address \
                 (`pagefault`), execute `ud2` (`ud`), divide by zero (`divide`), or \
                 have a process read a page it freed (`stale-page`: it must fault).",
    },
    row! {
        opt: Help,
        kind: Flag,
        images: All,
        stops: false,
        key: "ethos.help",
        default: "off",
        meaning: "print this and power off",
        detail: "The table goes on the console whatever `loglevel` says.",
    },
];

// The table is indexed by `Opt`: each row must sit at its option's index.
const _: () = {
    let mut i = 0;
    while i < TABLE.len() {
        assert!(TABLE[i].opt as usize == i, "TABLE is out of Opt's order");
        i += 1;
    }
};

impl Opt {
    pub fn spec(self) -> &'static Spec {
        &TABLE[self as usize]
    }
}

impl Spec {
    /// The row as `ethos.help` prints it.
    pub fn line(&self) -> &'static str {
        self.line
    }

    #[inline(never)]
    fn part(&self, field: usize) -> &'static str {
        let [at, len] = self.spans[field];
        let at = usize::from(at);
        self.line.get(at..at + usize::from(len)).unwrap_or("")
    }

    pub fn key(&self) -> &'static str {
        self.part(0)
    }

    /// The words (`|`-separated) for [`Kind::OneOf`]; how the value looks
    /// for the other kinds; empty for a flag.
    pub fn values(&self) -> &'static str {
        self.part(1)
    }

    /// Words only the guest-test image takes (its test hooks and apps).
    pub fn test_values(&self) -> &'static str {
        self.part(2)
    }

    pub fn default(&self) -> &'static str {
        self.part(3)
    }

    /// One short line.
    pub fn meaning(&self) -> &'static str {
        self.part(4)
    }
}

/// What is wrong with a word.
#[derive(Clone, Copy, Debug)]
pub enum Why {
    /// No such option; the key it may have meant.
    Unknown(Option<&'static str>),
    /// The option exists, but not on this image (it has no networking).
    NotOnImage,
    /// The value is one only the guest-test image takes.
    TestOnly(&'static Spec),
    /// The value is not one the option takes.
    BadValue(&'static Spec),
}

/// A word of the command line that is not a valid option.
#[derive(Clone, Copy, Debug)]
pub struct Problem<'a> {
    pub word: &'a str,
    pub why: Why,
    /// Whether the word counts: a later word with the same key wins.
    pub last: bool,
}

impl Problem<'_> {
    /// Whether the kernel must power off rather than go on with the default.
    pub fn stops(&self) -> bool {
        match self.why {
            Why::TestOnly(spec) | Why::BadValue(spec) => self.last && spec.stops,
            _ => false,
        }
    }
}

impl fmt::Display for Problem<'_> {
    /// One format for every case, its pieces looked up: each format site
    /// and each arm building strings costs the image.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What comes before and after the reason's one variable part.
        const REASONS: [(&str, &str); 5] = [
            ("unknown option", ""),
            ("unknown option (did you mean ", "?)"),
            ("this image has no networking", ""),
            ("", " needs the guest-test image"),
            ("expected ", ""),
        ];
        let (reason, part, spec) = match self.why {
            Why::Unknown(None) => (0, "", None),
            Why::Unknown(Some(key)) => (1, key, None),
            Why::NotOnImage => (2, "", None),
            Why::TestOnly(spec) => (3, split(self.word).1, Some(spec)),
            Why::BadValue(spec) => {
                let values = spec.values();
                (
                    4,
                    if values.is_empty() {
                        "no value"
                    } else {
                        values
                    },
                    Some(spec),
                )
            }
        };
        let (before, after) = REASONS[reason];
        // An earlier word is ignored whatever it says: a later one counts.
        let (then, default) = match spec {
            _ if self.stops() => ("powering off", ""),
            Some(spec) if self.last => ("using the default, ", spec.default()),
            _ => ("ignored", ""),
        };
        write!(
            f,
            "boot option {}: {before}{part}{after}; {then}{default}",
            self.word
        )
    }
}

/// The option an unknown key most likely meant: the first that begins
/// with it (a key cut short), or the one it is without `ethos.`. (An edit
/// distance would catch more typos, at a third of a kilobyte of the
/// image.)
fn near_miss(key: &str) -> Option<&'static str> {
    TABLE.iter().map(Spec::key).find(|known| {
        (!key.is_empty() && known.starts_with(key)) || known.strip_prefix("ethos.") == Some(key)
    })
}

/// The command line's options, read through [`TABLE`].
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    line: Cmdline<'a>,
    image: Image,
}

impl<'a> Options<'a> {
    pub fn new(line: Cmdline<'a>, image: Image) -> Self {
        Options { line, image }
    }

    /// The value the command line gives `opt`, if it is valid on this image
    /// (the last word with its key counts); `None`: the default applies.
    /// A flag given reads `Some("")`.
    pub fn get(&self, opt: Opt) -> Option<&'a str> {
        let spec = opt.spec();
        let value = self.line.get(spec.key())?;
        self.check(spec, value).is_none().then_some(value)
    }

    /// Where the value given `opt` (a [`Kind::OneOf`]) is among its
    /// [`Spec::values`], if it is valid: cheaper to map than the word.
    pub fn choice(&self, opt: Opt) -> Option<usize> {
        position_in(self.get(opt)?, opt.spec().values())
    }

    /// The words after `--`: the first program's arguments.
    pub fn init_args(&self) -> impl Iterator<Item = &'a str> {
        self.line.init_args()
    }

    /// Why `value` is refused for `spec` on this image, or `None`.
    fn check(&self, spec: &'static Spec, value: &str) -> Option<Why> {
        if !spec.images.has(self.image) {
            return Some(Why::NotOnImage);
        }
        let ok = match spec.kind {
            Kind::OneOf => {
                if position_in(value, spec.values()).is_none() {
                    if position_in(value, spec.test_values()).is_none() {
                        return Some(Why::BadValue(spec));
                    }
                    if self.image != Image::Test {
                        return Some(Why::TestOnly(spec));
                    }
                }
                true
            }
            Kind::Flag => value.is_empty(),
            Kind::Name => !value.is_empty(),
            #[cfg(any(test, feature = "net"))]
            Kind::Ipv4Prefix => crate::cmdline::parse_ipv4_prefix(value).is_some(),
            #[cfg(any(test, feature = "net"))]
            Kind::Ipv4 => crate::cmdline::parse_ipv4(value).is_some(),
            // Only networked options are addresses: `has` refused them above.
            #[cfg(not(any(test, feature = "net")))]
            Kind::Ipv4Prefix | Kind::Ipv4 => false,
        };
        (!ok).then_some(Why::BadValue(spec))
    }

    /// Every word before `--` that is not a valid option here, with why.
    pub fn problems(&self) -> impl Iterator<Item = Problem<'a>> + '_ {
        self.line.option_words().filter_map(move |word| {
            let (key, value) = split(word);
            // The same slice of the line, not an equal word.
            let last = self
                .line
                .last_word(key)
                .is_some_and(|w| core::ptr::eq(w, word));
            let why = match TABLE.iter().find(|s| s.key() == key) {
                None => Why::Unknown(near_miss(key)),
                Some(spec) => self.check(spec, value)?,
            };
            Some(Problem { word, why, last })
        })
    }
}

/// The table as markdown: docs/boot-options.md is this (see the test
/// `docs_are_current`).
#[cfg(test)]
pub fn markdown() -> String {
    use std::fmt::Write;
    let mut out = String::from(
        "# Boot options\n\n\
         <!-- Generated from the table in xen/src/options.rs: \
         do not edit; run `UPDATE_BOOT_OPTIONS=1 cargo test -p xen` -->\n\n\
         The guest's command line is the xl config's `extra=` (e.g. \
         `xl create xen-config/guest.cfg extra='\"ethos.init=hello -- one two\"'`). \
         Every word before a `--` word is an option, `key=value` (a flag is the \
         bare key); the words after `--` are the first program's arguments. \
         When a word repeats a key, the last one counts.\n\n\
         The line is checked at boot against this table, which is the one list \
         of what the kernel reads. A word that is not a valid option for the \
         image gets one line on the console naming the word and why, e.g. \
         `boot option ethos.ap=demo: unknown option (did you mean ethos.app?); \
         ignored`, and the kernel goes on: an unknown word (with or without `=`, \
         `ethos.` or not: xl passes nothing else than `extra=` and `root=`) or \
         an option of an image with networking on the core image is ignored; a \
         bad value falls back on the default, except for `ethos.init` and \
         `ethos.app`, where the domain powers off rather than run something else \
         than asked.\n\n\
         Images (`scripts/build-guest`): `guest` (core), `guest-net` (`--net`, \
         networking), `guest-test` (`--test-apps`, networking and test hooks).\n\n\
         | option | values | default | images | meaning |\n\
         |---|---|---|---|---|\n",
    );
    for spec in &TABLE {
        let mut values = match spec.kind {
            Kind::Flag => String::from("(no value)"),
            Kind::OneOf => spec
                .values()
                .split('|')
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => format!("`{}`", spec.values()),
        };
        if !spec.test_values().is_empty() {
            let test: Vec<String> = spec
                .test_values()
                .split('|')
                .map(|v| format!("`{v}`"))
                .collect();
            let _ = write!(values, "; guest-test also: {}", test.join(", "));
        }
        let images = match spec.images {
            Images::All => "all",
            Images::Networked => "guest-net, guest-test",
        };
        let bad = if spec.stops {
            " A bad value powers the domain off (the kernel does not guess what to run)."
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| `{}` | {values} | `{}` | {images} | {}.{bad} {} |",
            spec.key(),
            spec.default(),
            spec.meaning(),
            spec.detail
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(line: &'static str, image: Image) -> Options<'static> {
        Options::new(Cmdline::from_nul_terminated(line.as_bytes()), image)
    }

    fn lines(line: &'static str, image: Image) -> Vec<String> {
        options(line, image)
            .problems()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn a_good_line_has_no_problems_and_reads_its_values() {
        let o = options(
            "loglevel=debug ethos.init=hello ethos.rpc=off ethos.trace=on \
             ethos.ip=192.0.2.2/24 ethos.gw=192.0.2.1 ethos.tso=off -- one two=2 x",
            Image::Net,
        );
        assert_eq!(o.problems().count(), 0);
        assert_eq!(o.get(Opt::LogLevel), Some("debug"));
        assert_eq!(o.get(Opt::Init), Some("hello"));
        assert_eq!(o.get(Opt::Rpc), Some("off"));
        assert_eq!(o.get(Opt::Trace), Some("on"));
        assert_eq!(o.get(Opt::Ip), Some("192.0.2.2/24"));
        assert_eq!(o.get(Opt::Gw), Some("192.0.2.1"));
        assert_eq!(o.get(Opt::Tso), Some("off"));
        assert_eq!(o.get(Opt::App), None);
        assert_eq!(o.get(Opt::Help), None);
        assert_eq!(o.init_args().collect::<Vec<_>>(), ["one", "two=2", "x"]);
    }

    #[test]
    fn an_unknown_key_is_named_with_a_near_miss() {
        assert_eq!(
            lines("ethos.ap=demo", Image::Core),
            ["boot option ethos.ap=demo: unknown option (did you mean ethos.app?); ignored"]
        );
        assert_eq!(
            lines("loglev=info init=x", Image::Core),
            [
                "boot option loglev=info: unknown option (did you mean loglevel?); ignored",
                "boot option init=x: unknown option (did you mean ethos.init?); ignored",
            ]
        );
        // Bare words and words of other systems: unknown, no far-fetched hint.
        assert_eq!(
            lines("quiet root=/dev/xvda1", Image::Core),
            [
                "boot option quiet: unknown option; ignored",
                "boot option root=/dev/xvda1: unknown option; ignored",
            ]
        );
        // An unknown key reads as nothing.
        assert_eq!(options("ethos.ap=demo", Image::Core).get(Opt::App), None);
    }

    #[test]
    fn a_bad_value_is_named_and_falls_back_on_the_default() {
        let o = options("loglevel=bogus ethos.rpc ethos.tso=yes", Image::Net);
        assert_eq!(
            o.problems().map(|p| p.to_string()).collect::<Vec<_>>(),
            [
                "boot option loglevel=bogus: expected off|error|warn|info|debug|trace; \
                 using the default, info",
                "boot option ethos.rpc: expected on|off; using the default, on",
                "boot option ethos.tso=yes: expected on|off; using the default, on",
            ]
        );
        assert!(o.problems().all(|p| !p.stops()));
        assert_eq!(o.get(Opt::LogLevel), None);
        assert_eq!(o.get(Opt::Rpc), None);
        for bad in [
            "ethos.ip=192.0.2.2",
            "ethos.ip=192.0.2.2/33",
            "ethos.ip=192.0.2.2/0",
            "ethos.gw=192.0.2",
            "ethos.help=yes",
        ] {
            let o = Options::new(Cmdline::from_nul_terminated(bad.as_bytes()), Image::Net);
            let p: Vec<Problem> = o.problems().collect();
            assert_eq!(p.len(), 1, "{bad}");
            assert!(matches!(p[0].why, Why::BadValue(_)), "{bad}");
        }
        assert_eq!(
            lines("ethos.gw=x ethos.help=yes", Image::Net),
            [
                "boot option ethos.gw=x: expected A.B.C.D; using the default, none",
                "boot option ethos.help=yes: expected no value; using the default, off",
            ]
        );
    }

    /// The kernel maps the level by its position among the values.
    #[test]
    fn log_levels_are_in_the_order_the_kernel_maps() {
        assert_eq!(
            Opt::LogLevel.spec().values(),
            "off|error|warn|info|debug|trace"
        );
        for (i, level) in ["off", "error", "warn", "info", "debug", "trace"]
            .iter()
            .enumerate()
        {
            let line = format!("loglevel={level}");
            let o = Options::new(Cmdline::from_nul_terminated(line.as_bytes()), Image::Core);
            assert_eq!(o.choice(Opt::LogLevel), Some(i), "{level}");
        }
        assert_eq!(
            options("loglevel=loud", Image::Core).choice(Opt::LogLevel),
            None
        );
        assert_eq!(options("", Image::Core).choice(Opt::LogLevel), None);
    }

    #[test]
    fn levels_off_and_error_are_values() {
        assert_eq!(
            options("loglevel=off", Image::Core).get(Opt::LogLevel),
            Some("off")
        );
        assert_eq!(
            options("loglevel=error", Image::Core).get(Opt::LogLevel),
            Some("error")
        );
    }

    #[test]
    fn what_to_run_is_not_guessed() {
        let o = options("ethos.app=selftest", Image::Core);
        let p: Vec<Problem> = o.problems().collect();
        assert_eq!(
            p[0].to_string(),
            "boot option ethos.app=selftest: expected none; powering off"
        );
        assert!(p[0].stops());
        let o = options("ethos.init=", Image::Core);
        assert!(o.problems().next().unwrap().stops());
        // A later good word wins over a bad one: nothing stops.
        let o = options("ethos.app=selftest ethos.app=none", Image::Core);
        let p: Vec<Problem> = o.problems().collect();
        assert_eq!(
            p[0].to_string(),
            "boot option ethos.app=selftest: expected none; ignored"
        );
        assert!(!p[0].stops());
        assert_eq!(o.get(Opt::App), Some("none"));
        // The last word counts even when it is the bad one.
        let o = options("loglevel=debug loglevel=loud", Image::Core);
        assert_eq!(o.get(Opt::LogLevel), None);
    }

    #[test]
    fn a_net_option_on_the_core_image_says_it_has_no_networking() {
        assert_eq!(
            lines("ethos.ip=192.0.2.2/24 ethos.tso=off", Image::Core),
            [
                "boot option ethos.ip=192.0.2.2/24: this image has no networking; ignored",
                "boot option ethos.tso=off: this image has no networking; ignored",
            ]
        );
        let o = options("ethos.ip=192.0.2.2/24", Image::Core);
        assert_eq!(o.get(Opt::Ip), None);
        assert!(lines("ethos.ip=192.0.2.2/24", Image::Test).is_empty());
    }

    #[test]
    fn test_values_need_the_test_image() {
        assert_eq!(
            lines("ethos.test_fault=ud", Image::Net),
            [
                "boot option ethos.test_fault=ud: ud needs the guest-test image; \
              using the default, none"
            ]
        );
        let o = options("ethos.app=stale-page", Image::Core);
        let p = o.problems().next().unwrap();
        assert!(matches!(p.why, Why::TestOnly(_)));
        assert!(p.stops());
        for v in ["pagefault", "ud", "divide", "panic", "stale-page"] {
            let line = format!("ethos.test_fault={v}");
            let o = Options::new(Cmdline::from_nul_terminated(line.as_bytes()), Image::Test);
            assert_eq!(o.problems().count(), 0, "{v}");
            assert_eq!(o.get(Opt::TestFault), Some(v));
        }
        assert_eq!(
            options("ethos.test_fault=panic", Image::Core).get(Opt::TestFault),
            Some("panic")
        );
    }

    /// The table's words for the test faults are exactly what
    /// `TestFault` knows.
    #[test]
    fn test_fault_words_match_the_faults() {
        let spec = Opt::TestFault.spec();
        let words: Vec<&str> = spec
            .values()
            .split('|')
            .chain(spec.test_values().split('|'))
            .collect();
        for w in &words {
            let fault = crate::cmdline::TestFault::from_value(w)
                .unwrap_or_else(|| panic!("{w} is not a fault"));
            assert_eq!(fault.value(), *w);
        }
        assert_eq!(words.len(), 5);
    }

    #[test]
    fn arguments_are_not_options() {
        let o = options("ethos.init=hello -- ethos.rpc=off bogus", Image::Core);
        assert_eq!(o.problems().count(), 0);
        assert_eq!(o.get(Opt::Rpc), None);
        assert_eq!(
            o.init_args().collect::<Vec<_>>(),
            ["ethos.rpc=off", "bogus"]
        );
        // A `--` at the end: no arguments, and not an option either.
        let o = options("ethos.init=hello --", Image::Core);
        assert_eq!(o.problems().count(), 0);
        assert_eq!(o.init_args().count(), 0);
    }

    #[test]
    fn help_is_a_flag_and_each_row_prints_on_one_line() {
        assert_eq!(options("ethos.help", Image::Core).get(Opt::Help), Some(""));
        assert_eq!(options("loglevel=info", Image::Core).get(Opt::Help), None);
        assert_eq!(
            Opt::Ip.spec().line(),
            "ethos.ip=A.B.C.D/PREFIX [default none; guest-net, guest-test] \
             IPv4 address (needs a vif=)"
        );
        assert_eq!(
            Opt::Help.spec().line(),
            "ethos.help [default off] print this and power off"
        );
        assert_eq!(
            Opt::TestFault.spec().line(),
            "ethos.test_fault=panic (guest-test: pagefault|ud|divide|stale-page) \
             [default none] fault on purpose (tests)"
        );
        for spec in &TABLE {
            assert!(!spec.line().contains('\n'));
        }
    }

    #[test]
    fn keys_are_unique_and_hints_find_each() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert_ne!(a.key(), b.key());
            }
            // A key cut short points at an option it begins.
            let typo = &a.key()[..a.key().len() - 1];
            let hint = near_miss(typo);
            assert!(
                hint.is_some_and(|k| k.starts_with(typo)),
                "{typo}: {hint:?}"
            );
            // The line reads back as the fields were written.
            let read = [
                a.key(),
                a.values(),
                a.test_values(),
                a.default(),
                a.meaning(),
            ];
            assert_eq!(read, a.written, "{}", a.line());
        }
        assert_eq!(near_miss("ethos.test"), Some("ethos.test_fault"));
        assert_eq!(near_miss("tso"), Some("ethos.tso"));
        assert_eq!(near_miss("loglev"), Some("loglevel"));
        assert_eq!(near_miss(""), None);
        assert_eq!(near_miss(&"x".repeat(100)), None);
        assert_eq!(near_miss("quiet"), None);
    }

    /// docs/boot-options.md is the table rendered; `UPDATE_BOOT_OPTIONS=1
    /// cargo test -p xen` writes it.
    #[test]
    fn docs_are_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/boot-options.md");
        let want = markdown();
        if std::env::var_os("UPDATE_BOOT_OPTIONS").is_some() {
            std::fs::write(path, &want).expect("write docs/boot-options.md");
            return;
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/boot-options.md is not the table of xen/src/options.rs: \
             run `UPDATE_BOOT_OPTIONS=1 cargo test -p xen` and commit it"
        );
    }
}
