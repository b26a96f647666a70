//! vchan servers the guest offers to other domains (libxenvchan's wire
//! layout, from the `rpc` crate): the kernel allocates and grants the
//! pages and an event-channel port; the owning process moves bytes with
//! system calls and waits for the peer on the port (`sys::evtchn_wait`).

use crate::status::{SysError, SysResult};
use crate::xen::evtchn;
use alloc::vec::Vec;
use events::Pid;
use hal::shared::SharedRegion;
use log::{info, warn};
use rpc::{Layout, Notify, PeerState, Placement, Side, Vchan};
use spin::Mutex;
use vecmap::VecMap;

/// Channels at once (each holds its pages for the kernel's life).
const MAX_CHANNELS: usize = 4;

struct Channel {
    owner: Pid,
    port: u32,
    vchan: Vchan<SharedRegion>,
}

/// What a process publishes in xenstore for the client to find.
#[derive(Clone, Copy, Debug)]
pub struct Offer {
    pub handle: u32,
    /// Grant reference of the interface page (`ring-ref`).
    pub ring_ref: u32,
    /// The unbound port the client binds (`event-channel`).
    pub port: u32,
    /// The owner's handle for that port (`sys::evtchn_wait`).
    pub evtchn: u32,
}

static CHANNELS: Mutex<VecMap<u32, Channel>> = Mutex::new(VecMap::new());
static NEXT: Mutex<u32> = Mutex::new(1);

fn ring_region(
    region: &SharedRegion,
    layout: &Layout,
    side: Side,
    next_page: &mut usize,
) -> Option<SharedRegion> {
    match layout.placement(side) {
        Placement::InPage { .. } => None,
        Placement::Granted { pages, .. } => {
            let r = region.pages(*next_page, pages);
            *next_page += pages;
            Some(r)
        }
    }
}

/// The pages of a vchan server: the interface page (page 0) and the rings.
pub struct ServerPages {
    pub region: SharedRegion,
    pub layout: Layout,
}

impl ServerPages {
    /// Allocates zeroed pages for rings of at least `ring` bytes each way
    /// (both rings get the same size: which is which direction is then the
    /// rpc crate's business alone).
    pub fn alloc(ring: usize) -> SysResult<ServerPages> {
        let layout = Layout::for_min_sizes(ring, ring).map_err(|_| SysError::InvalidArgument)?;
        let region = SharedRegion::alloc(1 + layout.grant_count()).ok_or(SysError::OutOfMemory)?;
        Ok(ServerPages { region, layout })
    }

    /// Pages in all.
    pub fn count(&self) -> usize {
        1 + self.layout.grant_count()
    }

    /// Grants every page to `client` and lays out a fresh server over them
    /// (the pages must be zero or hold only a closed channel). Returns the
    /// server, the grant references (ring pages first, the interface page,
    /// `ring-ref`, last).
    pub fn serve(&self, client: u16) -> SysResult<(Vchan<SharedRegion>, Vec<u32>)> {
        let pages = self.count();
        let mut grants = Vec::with_capacity(pages);
        for n in (1..pages).chain([0]) {
            match crate::mm::pages::grant_kernel_page(&self.region, n, client, false) {
                Ok(g) => grants.push(g),
                Err(e) => {
                    // Nobody has seen these yet: end them at once.
                    for g in grants {
                        let _ = crate::mm::pages::end_kernel_grant(g);
                    }
                    return Err(e);
                }
            }
        }
        let mut next_page = 1;
        let left = ring_region(&self.region, &self.layout, Side::Left, &mut next_page);
        let right = ring_region(&self.region, &self.layout, Side::Right, &mut next_page);
        let vchan = Vchan::server(
            self.layout,
            self.region.page(0),
            left,
            right,
            &grants[..pages - 1],
        )
        .map_err(|e| {
            warn!("vchan setup refused: {e:?}");
            SysError::InvalidArgument
        })?;
        Ok((vchan, grants))
    }
}

/// Builds a vchan server for domain `client`: pages allocated, zeroed
/// and granted, header laid out, unbound port allocated. Returns the
/// channel, the interface page's grant reference and the port.
pub fn build(
    client: u16,
    write_min: usize,
    read_min: usize,
) -> SysResult<(Vchan<SharedRegion>, u32, u32)> {
    let pages = ServerPages::alloc(read_min.max(write_min))?;
    let (vchan, grants) = pages.serve(client)?;
    let ring_ref = *grants.last().expect("the interface page is granted");
    let port =
        hal::hypercall::evtchn_alloc_unbound(client).map_err(|e| SysError::Hypervisor(e.0))?;
    info!(
        "vchan offered to domain {client}: ring-ref {ring_ref}, port {port}, {} pages",
        pages.count()
    );
    Ok((vchan, ring_ref, port))
}

/// Offers a vchan server to domain `client`, owned by a process.
pub fn offer(owner: Pid, client: u16, write_min: usize, read_min: usize) -> SysResult<Offer> {
    if CHANNELS.lock().len() >= MAX_CHANNELS {
        return Err(SysError::Busy);
    }
    let (vchan, ring_ref, port) = build(client, write_min, read_min)?;
    let evtchn =
        evtchn::channels().adopt(owner, port, evtchn::Binding::Unbound { remote: client })?;
    let handle = {
        let mut next = NEXT.lock();
        let h = *next;
        *next += 1;
        h
    };
    CHANNELS
        .lock()
        .insert(handle, Channel { owner, port, vchan });
    Ok(Offer {
        handle,
        ring_ref,
        port,
        evtchn,
    })
}

fn with_channel<R>(
    owner: Pid,
    handle: u32,
    f: impl FnOnce(&mut Channel) -> SysResult<R>,
) -> SysResult<R> {
    let mut channels = CHANNELS.lock();
    let c = channels
        .get_mut(&handle)
        .filter(|c| c.owner == owner)
        .ok_or(SysError::BadHandle)?;
    f(c)
}

pub fn kick(port: u32, notify: Notify) {
    if notify == Notify::Yes {
        let _ = hal::hypercall::evtchn_send(port);
    }
}

fn rpc_error(e: rpc::Error) -> SysError {
    match e {
        rpc::Error::Broken(_) => SysError::ServiceBroken,
        rpc::Error::PeerClosed | rpc::Error::Closed => SysError::ServiceBroken,
        _ => SysError::Busy,
    }
}

/// Writes what fits of `data`; returns the bytes written.
pub fn write(owner: Pid, handle: u32, data: &[u8]) -> SysResult<usize> {
    with_channel(owner, handle, |c| {
        let t = c.vchan.write(data).map_err(rpc_error)?;
        kick(c.port, t.notify);
        Ok(t.bytes)
    })
}

/// Reads what is available into `buf`; returns the bytes read.
pub fn read(owner: Pid, handle: u32, buf: &mut [u8]) -> SysResult<usize> {
    with_channel(owner, handle, |c| {
        let t = c.vchan.read(buf).map_err(rpc_error)?;
        kick(c.port, t.notify);
        Ok(t.bytes)
    })
}

/// Whether the client has connected (or left).
pub fn peer_state(owner: Pid, handle: u32) -> SysResult<PeerState> {
    with_channel(owner, handle, |c| c.vchan.peer_state().map_err(rpc_error))
}
