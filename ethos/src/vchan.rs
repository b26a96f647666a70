//! vchan servers a program offers to another domain, wire compatible with
//! libxenvchan (Debian's `vchan-socket-proxy` connects as the client): the
//! ring code is the `rpc` crate's, the kernel's RPC channel's own.
//!
//! [`Server::offer`] allocates the pages, binds them at an address the
//! program chooses, grants them to the client, allocates an unbound
//! event-channel port for it and lays out the interface page. The program
//! then publishes [`Server::ring_ref`] and [`Server::port`] in xenstore
//! (`ring-ref` and `event-channel` under a node the client is told), and
//! moves bytes with [`Server::write`] and [`Server::read`], which never
//! block: between tries it waits for the client's notification on the
//! channel ([`crate::evtchn::wait`] on [`Server::channel`]). Both kick the
//! client themselves when it asked to be told.
//!
//! Needs the rights [`abi::rights::FOREIGN`] (grants, the port); publishing
//! needs [`abi::rights::XENSTORE_WRITE`].
//!
//! ```no_run
//! use ethos::vchan::{PeerState, Server};
//! # fn main() -> Result<(), ethos::Status> {
//! let mut server = Server::offer(0, 4096, ethos::pages::USER_REGION.start)?;
//! // ... publish server.ring_ref() and server.port() in xenstore ...
//! while server.peer()? == PeerState::Waiting {
//!     let note = ethos::evtchn::wait(server.channel())?;
//!     ethos::event::block_and_retire(note)?;
//! }
//! let sent = server.write(b"hello")?;
//! # let _ = sent; Ok(()) }
//! ```

use ::rpc::{Error, Layout, Notify, Placement, Side, Vchan};

use abi::{Status, PAGE_SIZE};

use crate::evtchn::{self, Channel};
use crate::raw::shared::{self, SharedRegion};

pub use ::rpc::PeerState;

/// The server end of a vchan, over pages this program shares with the
/// client for the rest of its life.
pub struct Server {
    vchan: Vchan<SharedRegion>,
    channel: Channel,
    port: u32,
    ring_ref: u32,
    #[cfg(test)]
    pages: SharedRegion,
}

impl Server {
    /// Offers a vchan to domain `client` with rings of at least `ring_min`
    /// bytes each way (libxenvchan's sizes: 1024 and 2048 live in the
    /// interface page, larger ones in pages of their own), its pages bound
    /// from `va` (page-aligned, in [`crate::pages::USER_REGION`], room for
    /// [`Server::pages_for`] pages).
    ///
    /// Errors: [`Status::InvalidArgument`] (a ring size libxenvchan cannot
    /// express, a bad address), and those of the pages and
    /// [`evtchn::alloc_unbound`].
    pub fn offer(client: u16, ring_min: usize, va: u64) -> Result<Server, Status> {
        let layout = layout(ring_min)?;
        let count = 1 + layout.grant_count();
        let (pages, grants) = shared::share(va, count, client)?;
        // Page 0 is the interface page (its grant is `ring-ref`); the
        // rings' pages follow, the left ring's first, as the header lists
        // their grants.
        let mut next = 1;
        let mut ring = |side| match layout.placement(side) {
            Placement::InPage { .. } => None,
            Placement::Granted { pages: n, .. } => {
                let r = pages.pages(next, n);
                next += n;
                Some(r)
            }
        };
        let left = ring(Side::Left);
        let right = ring(Side::Right);
        let vchan = Vchan::server(layout, pages.pages(0, 1), left, right, &grants[1..])
            .map_err(|_| Status::InvalidArgument)?;
        let (channel, port) = evtchn::alloc_unbound(client)?;
        Ok(Server {
            vchan,
            channel,
            port,
            ring_ref: grants[0],
            #[cfg(test)]
            pages,
        })
    }

    /// The pages [`Server::offer`] binds for rings of `ring_min` bytes.
    pub fn pages_for(ring_min: usize) -> Result<usize, Status> {
        Ok(1 + layout(ring_min)?.grant_count())
    }

    /// The interface page's grant reference: the `ring-ref` to publish.
    pub fn ring_ref(&self) -> u32 {
        self.ring_ref
    }

    /// The Xen port the client binds (its `event-channel`, to publish).
    pub fn port(&self) -> u32 {
        self.port
    }

    /// The event channel's handle: wait on it for the client's
    /// notifications.
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// Whether the client is still to come, connected, or gone.
    ///
    /// Errors: [`Status::ServiceBroken`] when the client broke the protocol
    /// (an impossible liveness byte).
    pub fn peer(&mut self) -> Result<PeerState, Status> {
        self.vchan.peer_state().map_err(status)
    }

    /// Writes what fits of `data` (0 when the ring is full: wait on the
    /// port for the client to read); kicks the client if it asked.
    ///
    /// Errors: [`Status::ServiceBroken`] (the client left, closed this end
    /// or broke the protocol), [`evtchn::notify`]'s.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Status> {
        let t = self.vchan.write(data).map_err(status)?;
        self.kick(t.notify)?;
        Ok(t.bytes)
    }

    /// Reads what the client sent into `buf` (0 when nothing is there:
    /// wait on the port); kicks the client if it asked.
    ///
    /// Errors: [`Status::ServiceBroken`] (the client left and nothing is
    /// left to read, or it broke the protocol), [`evtchn::notify`]'s.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Status> {
        let t = self.vchan.read(buf).map_err(status)?;
        self.kick(t.notify)?;
        Ok(t.bytes)
    }

    /// Closes this end (the client sees the liveness byte and the kick).
    /// The pages stay granted: a client may still map them.
    pub fn close(&mut self) -> Result<(), Status> {
        let notify = self.vchan.close();
        self.kick(notify)
    }

    /// The shared pages, for a test playing the client over the same bytes.
    #[cfg(test)]
    pub(crate) fn shared_pages(&self) -> SharedRegion {
        self.pages
    }

    fn kick(&self, notify: Notify) -> Result<(), Status> {
        if notify.is_yes() {
            evtchn::notify(self.channel)?;
        }
        Ok(())
    }
}

fn layout(ring_min: usize) -> Result<Layout, Status> {
    Layout::for_min_sizes(ring_min, ring_min).map_err(|_| Status::InvalidArgument)
}

/// The `rpc` crate's error as a status: the channel is unusable, or (for
/// back-pressure, which `read`/`write` report as 0 bytes instead) busy.
fn status(e: Error) -> Status {
    match e {
        Error::Broken(_) | Error::PeerClosed | Error::Closed => Status::ServiceBroken,
        _ => Status::Busy,
    }
}

// The interface page is one page.
const _: () = assert!(PAGE_SIZE == 4096);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::USER_REGION;
    use ::rpc::{Probe, SharedMem};

    /// A client end over the server's own bytes, as dom0 would map them.
    fn client(server: &Server) -> Vchan<SharedRegion> {
        let pages = server.shared_pages();
        let ctrl = pages.pages(0, 1);
        let probe = Probe::read(&ctrl).expect("a valid interface page");
        let mut next = 1;
        let mut ring = |grants: &[u32]| {
            (!grants.is_empty()).then(|| {
                let r = pages.pages(next, grants.len());
                next += grants.len();
                r
            })
        };
        let left = ring(&probe.left_grants);
        let right = ring(&probe.right_grants);
        let (end, notify) = Vchan::client(probe.layout, ctrl, left, right).expect("attach");
        assert!(notify.is_yes(), "attaching kicks the server");
        end
    }

    #[test]
    fn an_offer_lays_out_granted_rings_and_bytes_flow_both_ways() {
        let mut server = Server::offer(0, 4096, USER_REGION.start).unwrap();
        assert_eq!(Server::pages_for(4096), Ok(3));
        // Three pages, bound where asked; the interface page's grant is
        // ring-ref, the rings' grants are listed in the header.
        assert_eq!(
            crate::fake::bound_pages(),
            [0, 1, 2].map(|i| USER_REGION.start + i * PAGE_SIZE)
        );
        assert_eq!(server.ring_ref(), 42);
        // The port to publish and the handle to wait on are not the same.
        assert_eq!((server.port(), server.channel()), (41, Channel(5)));
        let probe = Probe::read(&server.shared_pages().pages(0, 1)).unwrap();
        assert_eq!(
            (probe.left_grants, probe.right_grants),
            (vec![43], vec![44])
        );
        assert_eq!(server.peer(), Ok(PeerState::Waiting));

        let mut end = client(&server);
        assert_eq!(server.peer(), Ok(PeerState::Live));
        assert_eq!(server.write(b"hello from ethos"), Ok(16));
        let mut buf = [0u8; 64];
        let t = end.read(&mut buf).unwrap();
        assert_eq!(&buf[..t.bytes], b"hello from ethos");
        let t = end.write(b"echo").unwrap();
        assert_eq!(t.bytes, 4);
        assert_eq!(server.read(&mut buf), Ok(4));
        assert_eq!(&buf[..4], b"echo");
        // Nothing more: 0 bytes, not an error.
        assert_eq!(server.read(&mut buf), Ok(0));

        let _ = end.close();
        assert_eq!(server.peer(), Ok(PeerState::Closed));
        assert_eq!(server.read(&mut buf), Err(Status::ServiceBroken));
        assert_eq!(server.write(b"x"), Err(Status::ServiceBroken));
    }

    #[test]
    fn small_rings_live_in_the_interface_page() {
        let server = Server::offer(0, 1024, USER_REGION.start).unwrap();
        assert_eq!(crate::fake::bound_pages().len(), 1);
        let probe = Probe::read(&server.shared_pages()).unwrap();
        assert!(probe.left_grants.is_empty() && probe.right_grants.is_empty());
    }

    #[test]
    fn bad_offers_are_refused_and_leave_no_page_behind() {
        // Not libxenvchan-expressible, outside the program's region, not
        // page-aligned, past the region's end.
        assert_eq!(
            Server::offer(0, 1 << 21, USER_REGION.start).err(),
            Some(Status::InvalidArgument)
        );
        assert_eq!(
            Server::offer(0, 4096, abi::HEAP_START).err(),
            Some(Status::InvalidArgument)
        );
        assert_eq!(
            Server::offer(0, 4096, USER_REGION.start + 8).err(),
            Some(Status::BadAlignment)
        );
        assert_eq!(
            Server::offer(0, 4096, USER_REGION.end - PAGE_SIZE).err(),
            Some(Status::InvalidArgument)
        );
        // The kernel running out part way: what was taken is given back.
        crate::fake::set_page_limit(2);
        assert_eq!(
            Server::offer(0, 4096, USER_REGION.start).err(),
            Some(Status::OutOfMemory)
        );
        assert!(crate::fake::bound_pages().is_empty());
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn a_shared_access_outside_the_region_panics() {
        let server = Server::offer(0, 1024, USER_REGION.start).unwrap();
        server.shared_pages().load_u8(PAGE_SIZE as usize);
    }
}
