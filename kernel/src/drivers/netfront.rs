//! The netfront device: the rings, buffers, grants and port that carry
//! Ethernet frames to and from Linux netback, as a `smoltcp` device.
//!
//! The ring protocol and its checks against a hostile backend live in the
//! library (`xen::netfront`); this module owns the memory and the Xen
//! calls. The xenbus handshake is not here: the `net-setup` process does it
//! with xenstore system calls and hands over with `attach` / `connect`.
//!
//! Buffers: [`RX_BUFFERS`] pages posted to the backend (granted writable:
//! with `request-rx-copy` it copies frames into them), [`TX_BUFFERS`] pages
//! for frames in flight (granted read-only). A frame is copied once out of
//! an rx page into private memory, and once into a tx page. When netback
//! takes GSO packets, consecutive TCP segments are first joined (see
//! `crate::net::tso`) and go out as one packet over several tx pages. Received frames
//! wait in a bounded queue for smoltcp; beyond it they are dropped and
//! counted. A backend that breaks the protocol leaves the device broken (no
//! more reads or writes of the rings), logged once.

use crate::net::tso::Coalescer;
use crate::status::{SysError, SysResult};
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use hal::hypercall;
use hal::shared::SharedRegion;
use log::{error, info, warn};
use rpc::SharedMem;
use smoltcp::phy::{self, Checksum, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use spin::Mutex;
use xen::netfront::{txflags, BrokenReason, RxRing, TxRing, TxSlot, MAX_PACKET_SLOTS};

/// Receive buffers posted to the backend.
pub const RX_BUFFERS: usize = 64;
/// Frames in flight to the backend.
pub const TX_BUFFERS: usize = 64;
/// Received frames waiting for smoltcp.
pub const RX_QUEUE: usize = 128;
/// Ethernet MTU plus header.
pub const MAX_FRAME: usize = 1514;
const PAGE: usize = 4096;
/// Largest joined TCP frame (segmentation offload): 16 pages, within
/// netback's slots per packet and the 64 KiB of an IPv4 packet.
const MAX_GSO_FRAME: usize = 16 * PAGE;
const _: () = assert!(MAX_GSO_FRAME / PAGE <= MAX_PACKET_SLOTS);

/// Counters of the device.
#[derive(Clone, Copy, Debug, Default)]
pub struct DevStats {
    pub rx_frames: u64,
    pub tx_frames: u64,
    /// Frames the queue had no room for.
    pub rx_dropped: u64,
    /// Responses with an error status, or a length no frame can have.
    pub rx_errors: u64,
    /// Frames dropped before the stack because their headers are malformed
    /// (short, bad IPv4 header or checksum, impossible lengths, bad ARP).
    pub rx_malformed: u64,
    /// Frames of protocols the guest does not speak (IPv6, ...), dropped.
    pub rx_not_ours: u64,
    pub tx_errors: u64,
    /// Of `tx_frames`, GSO packets (several TCP segments joined).
    pub tx_gso: u64,
    /// Kicks sent to the backend, and times our port fired.
    pub notifies: u64,
    pub port_events: u64,
}

pub struct NetDevice {
    port: u32,
    tx: TxRing<SharedRegion>,
    rx: RxRing<SharedRegion>,
    /// The grants of the two ring pages (tx, rx).
    ring_grants: Vec<u32>,
    tx_pages: SharedRegion,
    tx_grants: Vec<u32>,
    /// Free tx buffer slots; the ring id in flight for each busy slot.
    tx_free: Vec<usize>,
    tx_slot_of_id: Vec<Option<usize>>,
    rx_pages: SharedRegion,
    rx_grants: Vec<u32>,
    rx_slot_of_id: Vec<Option<usize>>,
    rx_queue: VecDeque<Vec<u8>>,
    /// Frames pushed to the tx ring and not yet published.
    unpublished: usize,
    /// Where smoltcp writes a frame to send (reused).
    scratch: Vec<u8>,
    /// Joins TCP segments into GSO packets, when the backend takes them.
    tso: Option<Coalescer>,
    broken: Option<BrokenReason>,
    stats: DevStats,
    ring_pages: SharedRegion,
}

/// Memory of devices released earlier (every grant ended, so no backend
/// maps it), for the next device. Shared pages never go back to the heap
/// (see `SharedRegion`): without reuse, every detach and attach would cost
/// half a megabyte for good. Bounded by the devices ever alive at once.
static SPARE: Mutex<Vec<[SharedRegion; 3]>> = Mutex::new(Vec::new());

/// (rings, tx buffers, rx buffers) for a new device: a released device's,
/// zeroed (nothing of old traffic is shown to the new backend), or new.
fn device_pages() -> SysResult<[SharedRegion; 3]> {
    if let Some(regions) = SPARE.lock().pop() {
        regions.iter().for_each(SharedRegion::zero);
        return Ok(regions);
    }
    let alloc = |pages| SharedRegion::alloc(pages).ok_or(SysError::OutOfMemory);
    Ok([alloc(2)?, alloc(TX_BUFFERS)?, alloc(RX_BUFFERS)?])
}

/// Grants every page of `region` to `peer`.
fn grant_all(
    region: &SharedRegion,
    pages: usize,
    peer: u16,
    readonly: bool,
) -> SysResult<Vec<u32>> {
    let mut grants = Vec::with_capacity(pages);
    for n in 0..pages {
        match crate::mm::pages::grant_kernel_page(region, n, peer, readonly) {
            Ok(g) => grants.push(g),
            Err(e) => {
                for g in grants {
                    let _ = crate::mm::pages::end_kernel_grant(g);
                }
                return Err(e);
            }
        }
    }
    Ok(grants)
}

impl NetDevice {
    /// Allocates and grants the rings and buffers for `backend`, posts the
    /// receive buffers and allocates the unbound port. The handshake then
    /// publishes [`Self::offer`].
    pub fn attach(backend: u16) -> SysResult<NetDevice> {
        let [ring_pages, tx_pages, rx_pages] = device_pages()?;
        let ring_grants = grant_all(&ring_pages, 2, backend, false)?;
        let tx_grants = grant_all(&tx_pages, TX_BUFFERS, backend, true)?;
        let rx_grants = grant_all(&rx_pages, RX_BUFFERS, backend, false)?;
        let port =
            hypercall::evtchn_alloc_unbound(backend).map_err(|e| SysError::Hypervisor(e.0))?;
        let tx = TxRing::new(ring_pages.page(0));
        let rx = RxRing::new(ring_pages.page(1));
        let mut dev = NetDevice {
            port,
            tx_slot_of_id: vec![None; tx.size()],
            rx_slot_of_id: vec![None; rx.size()],
            tx,
            rx,
            ring_grants,
            tx_pages,
            tx_grants,
            tx_free: (0..TX_BUFFERS).rev().collect(),
            rx_pages,
            rx_grants,
            rx_queue: VecDeque::with_capacity(RX_QUEUE),
            unpublished: 0,
            scratch: Vec::with_capacity(MAX_FRAME),
            tso: None,
            broken: None,
            stats: DevStats::default(),
            ring_pages,
        };
        for slot in 0..RX_BUFFERS {
            dev.post_rx(slot)?;
        }
        dev.publish_rx();
        info!(
            "net: device for backend {backend}: tx-ring-ref {} rx-ring-ref {} port {port}, \
             {RX_BUFFERS} rx and {TX_BUFFERS} tx buffers",
            dev.ring_grants[0], dev.ring_grants[1]
        );
        Ok(dev)
    }

    /// Turns segmentation offload on or off (on: the backend takes
    /// multi-slot GSO packets).
    pub fn set_tso(&mut self, on: bool) {
        self.tso = None;
        if on {
            self.tso = Coalescer::new(MAX_GSO_FRAME);
            if self.tso.is_none() {
                warn!(
                    "net: no memory for a {MAX_GSO_FRAME}-byte GSO frame; segmentation offload off"
                );
            }
        }
    }

    /// Whether segmentation offload is on.
    pub fn tso(&self) -> bool {
        self.tso.is_some()
    }

    /// Frees the private buffers (queued frames, the frame being built)
    /// of a device that will not send or receive again, while its pages
    /// wait for the old backend to let go.
    pub fn shed_buffers(&mut self) {
        self.rx_queue = VecDeque::new();
        self.scratch = Vec::new();
        self.tso = None;
    }

    /// (tx-ring-ref, rx-ring-ref, event-channel) for xenstore.
    pub fn offer(&self) -> (u32, u32, u32) {
        (self.ring_grants[0], self.ring_grants[1], self.port)
    }

    pub fn port(&self) -> u32 {
        self.port
    }

    pub fn stats(&self) -> DevStats {
        self.stats
    }

    /// Counts a notification from the backend (the port fired).
    pub fn note_port_event(&mut self) {
        self.stats.port_events += 1;
    }

    pub fn has_rx(&self) -> bool {
        !self.rx_queue.is_empty()
    }

    fn broke(&mut self, why: BrokenReason) {
        if self.broken.is_none() {
            error!("net: backend broke the protocol: {why}; device stopped");
            self.broken = Some(why);
        }
    }

    fn post_rx(&mut self, slot: usize) -> SysResult<()> {
        let id = self
            .rx
            .post(self.rx_grants[slot])
            .map_err(|_| SysError::Busy)?;
        self.rx_slot_of_id[usize::from(id)] = Some(slot);
        Ok(())
    }

    fn publish_rx(&mut self) {
        if self.rx.publish() {
            self.kick();
        }
    }

    fn kick(&mut self) {
        self.stats.notifies += 1;
        let _ = hypercall::evtchn_send(self.port);
    }

    /// Takes the backend's responses: frames into the queue (buffers posted
    /// again), finished transmissions' buffers back to the free list.
    pub fn service(&mut self) {
        if self.broken.is_some() {
            return;
        }
        // The rings free an id as they hand over its response, and the next
        // post may give the same id out again: each id is turned into its
        // buffer slot right here, inside the callback, never later.
        let (tx_slot_of_id, tx_free, stats) =
            (&mut self.tx_slot_of_id, &mut self.tx_free, &mut self.stats);
        let polled = self.tx.poll(&mut |id, status| {
            if let Some(slot) = tx_slot_of_id[usize::from(id)].take() {
                tx_free.push(slot);
            }
            if !status.is_ok() {
                stats.tx_errors += 1;
            }
        });
        if let Err(why) = polled {
            self.broke(why);
            return;
        }
        let mut arrived = Vec::new();
        let rx_slot_of_id = &mut self.rx_slot_of_id;
        let polled = self.rx.poll(&mut |id, result| {
            if let Some(slot) = rx_slot_of_id[usize::from(id)].take() {
                arrived.push((slot, result));
            }
        });
        if let Err(why) = polled {
            self.broke(why);
            return;
        }
        for (slot, result) in arrived {
            match result {
                Ok(pkt) if usize::from(pkt.len) <= MAX_FRAME => {
                    let mut frame = vec![0u8; usize::from(pkt.len)];
                    self.rx_pages
                        .copy_out(slot * PAGE + usize::from(pkt.offset), &mut frame);
                    use crate::net::netcheck::{check_frame, Verdict};
                    match check_frame(&frame) {
                        Verdict::Malformed(flaw) => {
                            self.stats.rx_malformed += 1;
                            note_malformed(self.stats.rx_malformed, flaw, &frame);
                        }
                        Verdict::NotOurs => self.stats.rx_not_ours += 1,
                        Verdict::Accept if self.rx_queue.len() >= RX_QUEUE => {
                            self.stats.rx_dropped += 1
                        }
                        Verdict::Accept => {
                            self.rx_queue.push_back(frame);
                            self.stats.rx_frames += 1;
                        }
                    }
                }
                _ => self.stats.rx_errors += 1,
            }
            if let Err(e) = self.post_rx(slot) {
                warn!("net: cannot post rx buffer {slot} again: {e}");
            }
        }
        self.publish_rx();
    }

    /// Whether a frame may be taken from smoltcp now: every page the
    /// pending joined frame needs, and one more (for the new frame, joined
    /// or alone), are free.
    fn tx_room(&self) -> bool {
        let pending = self.tso.as_ref().map_or(0, Coalescer::pending_len);
        self.broken.is_none() && self.tx_free.len() > pending.div_ceil(PAGE)
    }

    /// A frame from smoltcp: joined to the pending GSO packet if it can be,
    /// else sent (after what was pending).
    fn send(&mut self, frame: &mut [u8]) {
        if let Some(tso) = self.tso.as_mut() {
            if tso.offer(frame) {
                return;
            }
            self.send_pending();
            if self.tso.as_mut().is_some_and(|tso| tso.offer(frame)) {
                return;
            }
        }
        self.queue_packet(frame, None);
    }

    /// Sends the joined frame pending, if any.
    fn send_pending(&mut self) {
        if let Some(mut tso) = self.tso.take() {
            tso.take(|frame, gso| self.queue_packet(frame, gso));
            self.tso = Some(tso);
        }
    }

    /// Copies a frame into free tx pages and queues it as one packet (a GSO
    /// packet when `gso` gives the segment size).
    fn queue_packet(&mut self, frame: &mut [u8], gso: Option<u16>) {
        // TCP leaves its checksum to dom0 (see `crate::net::txcsum`); smoltcp
        // computes every other protocol's. GSO needs it (netback insists).
        let flags = if crate::net::txcsum::prepare_partial_checksum(frame) {
            txflags::CSUM_BLANK | txflags::DATA_VALIDATED
        } else {
            0
        };
        let pages = frame.len().div_ceil(PAGE);
        if pages > self.tx_free.len() || pages > MAX_PACKET_SLOTS || (gso.is_some() && flags == 0) {
            // tx_room() keeps this from happening; counted if it does.
            self.stats.tx_errors += 1;
            return;
        }
        let mut slots = [TxSlot {
            gref: 0,
            offset: 0,
            len: 0,
        }; MAX_PACKET_SLOTS];
        let mut buffers = [0usize; MAX_PACKET_SLOTS];
        for (i, chunk) in frame.chunks(PAGE).enumerate() {
            let buffer = self.tx_free.pop().expect("counted above");
            self.tx_pages.copy_in(buffer * PAGE, chunk);
            buffers[i] = buffer;
            slots[i] = TxSlot {
                gref: self.tx_grants[buffer],
                offset: 0,
                len: chunk.len() as u16,
            };
        }
        let mut ids = [0u16; MAX_PACKET_SLOTS];
        match self
            .tx
            .push_packet(&slots[..pages], flags, gso, &mut ids[..pages])
        {
            Ok(()) => {
                for (id, buffer) in ids[..pages].iter().zip(&buffers[..pages]) {
                    self.tx_slot_of_id[usize::from(*id)] = Some(*buffer);
                }
                self.stats.tx_frames += 1;
                self.stats.tx_gso += u64::from(gso.is_some());
                self.unpublished += pages;
                // Frames go out in batches (one publish, at most one kick);
                // a full half ring goes at once so the backend keeps busy.
                if self.unpublished >= TX_BUFFERS / 2 {
                    self.publish_tx();
                }
            }
            Err(_) => {
                self.tx_free.extend_from_slice(&buffers[..pages]);
                self.stats.tx_errors += 1;
            }
        }
    }

    /// Sends what is pending, publishes the frames pushed since the last
    /// call, and kicks the backend if it asked to be told.
    pub fn flush_tx(&mut self) {
        self.send_pending();
        self.publish_tx();
    }

    fn publish_tx(&mut self) {
        if self.unpublished == 0 || self.broken.is_some() {
            return;
        }
        self.unpublished = 0;
        if self.tx.publish() {
            self.kick();
        }
    }

    /// Hands the device's memory on to the next device. Only for a device
    /// whose [`Self::release`] said every grant has ended.
    pub fn recycle(self) {
        let held = self.ring_grants.len() + self.tx_grants.len() + self.rx_grants.len();
        if held == 0 && self.port == 0 {
            SPARE
                .lock()
                .push([self.ring_pages, self.tx_pages, self.rx_pages]);
        }
    }

    /// The domain was restored: the port went with the old domain (its
    /// number may name a port bound since), so it is forgotten, not closed.
    pub fn forget_port(&mut self) {
        self.port = 0;
    }

    /// Closes the port and ends every grant the backend no longer maps;
    /// false while some are still mapped (the pages must not be reused yet:
    /// the caller keeps the device and tries again later).
    pub fn release(&mut self) -> bool {
        if self.port != 0 {
            let _ = hypercall::evtchn_close(self.port);
            self.port = 0;
        }
        let end = |grants: &mut Vec<u32>| {
            grants.retain(|&g| crate::mm::pages::end_kernel_grant(g).is_err());
        };
        end(&mut self.ring_grants);
        end(&mut self.tx_grants);
        end(&mut self.rx_grants);
        let held = self.ring_grants.len() + self.tx_grants.len() + self.rx_grants.len();
        if held == 0 {
            return true;
        }
        info!("net: the backend still maps {held} pages; kept until it lets go");
        false
    }
}

/// Logs the first malformed frames whole-headed (and then every 1000th by
/// count): enough to tell a hostile peer from a bug of ours, without letting
/// a flood of garbage flood the console.
fn note_malformed(count: u64, flaw: crate::net::netcheck::Flaw, frame: &[u8]) {
    if count <= 8 || count.is_multiple_of(1000) {
        let head = &frame[..frame.len().min(54)];
        warn!(
            "net: malformed frame #{count} ({flaw:?}, {} bytes) dropped: {head:02x?}",
            frame.len()
        );
    }
}

pub struct RxToken(Vec<u8>);
pub struct TxToken<'a>(&'a mut NetDevice);

impl phy::RxToken for RxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // One private buffer, reused: smoltcp writes the frame there, then it
        // is copied into granted pages (by way of the joined GSO frame when
        // segmentation offload is on).
        let mut frame = core::mem::take(&mut self.0.scratch);
        frame.resize(len.min(MAX_FRAME), 0);
        let r = f(&mut frame);
        self.0.send(&mut frame);
        self.0.scratch = frame;
        r
    }
}

impl phy::Device for NetDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_>)> {
        if !self.tx_room() {
            return None;
        }
        let frame = self.rx_queue.pop_front()?;
        Some((RxToken(frame), TxToken(self)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        self.tx_room().then_some(TxToken(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps.max_burst_size = Some(TX_BUFFERS / 2);
        // Received TCP is verified here; sent TCP carries a partial checksum
        // that dom0 trusts or completes (`NETTXF_csum_blank`).
        caps.checksum.tcp = Checksum::Rx;
        caps
    }
}
