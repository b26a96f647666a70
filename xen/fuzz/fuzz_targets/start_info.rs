//! The start_info page and the command line in it come from the domain
//! builder: any bytes must parse or be refused without a panic.
#![no_main]

use xen::public::{StartInfo, MAX_GUEST_CMDLINE};
use xen::boot_info::BootInfo;
use xen::cmdline::TestFault;
use xen::options::{Image, Opt, Options, TABLE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut magic = [0u8; 32];
    let mut cmd_line = [0u8; MAX_GUEST_CMDLINE];
    let (head, rest) = data.split_at(data.len().min(32));
    magic[..head.len()].copy_from_slice(head);
    let n = rest.len().min(MAX_GUEST_CMDLINE);
    cmd_line[..n].copy_from_slice(&rest[..n]);
    let word = |i: usize| data.get(i).copied().unwrap_or(0) as u64;
    let si = StartInfo {
        magic,
        nr_pages: word(0) * 97,
        shared_info: word(1) << 12,
        flags: 0,
        store_mfn: word(2),
        store_evtchn: word(3) as u32,
        console_mfn: word(4),
        console_evtchn: word(5) as u32,
        pt_base: 0,
        nr_pt_frames: 0,
        mfn_list: 0,
        mod_start: 0,
        mod_len: 0,
        cmd_line,
        first_p2m_pfn: 0,
        nr_p2m_frames: 0,
    };
    if let Ok(info) = BootInfo::parse(&si) {
        assert!(info.magic.starts_with("xen-3.0-x86_64"));
        assert!(info.nr_pages > 0);
        let _ = info.memory_mib();
        assert!(!info.cmdline.as_str().contains('\0'));
        for image in [Image::Core, Image::Net, Image::Test] {
            let options = Options::new(info.cmdline, image);
            for problem in options.problems() {
                let _ = problem.stops();
                assert!(problem.to_string().starts_with("boot option "));
            }
            for spec in &TABLE {
                let _ = options.get(spec.opt);
            }
            // What the table lets through is what the kernel can act on.
            if let Some(value) = options.get(Opt::TestFault) {
                assert!(TestFault::from_value(value).is_some(), "{value}");
            }
            if image == Image::Core {
                assert_eq!(options.get(Opt::Ip), None);
            }
            let _ = options.init_args().count();
        }
    }
});
