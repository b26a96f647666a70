//! Attaching to one guest's vchan as its client: map the interface page and the
//! rings through gntdev, bind the event channel, arm the unmap notification, and
//! hand the pieces to a [`Connection`].
//!
//! Every number here comes from the guest (xenstore keys, the interface page) and
//! is checked before use: the rpc crate validates the layout and bounds the grant
//! lists, [`GrantRegion::map`] refuses more than [`MAX_REGION_PAGES`] grants, and
//! a failure at any step releases what the earlier steps took (RAII).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rpc::layout::CLI_LIVE;
use rpc::{Config, Probe, Responder, SetupError, Vchan};
use shadowdaemon::confine::GuestRoot;
use shadowdaemon::serve::{Connection, EventChannel, Handler, Limits};

use super::evtchn::XenEventChannel;
use super::gntdev::{Gntdev, GntdevError, GrantRegion, MAX_REGION_PAGES};

/// What a guest published: `ring-ref` and `event-channel` under its vchan node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Grant reference of the vchan interface page.
    pub ring_ref: u32,
    /// The guest's unbound port.
    pub port: u32,
}

impl fmt::Display for Offer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ring-ref {} port {}", self.ring_ref, self.port)
    }
}

/// The memory a connection works on.
pub type Region = Arc<GrantRegion>;
/// A connection over mapped grants and `/dev/xen/evtchn`.
pub type XenConnection = Connection<Region, XenEventChannel>;

/// Why attaching failed.
#[derive(Debug)]
pub enum ConnectError {
    /// Mapping a grant failed (the guest may have revoked it, or lied).
    Map(GntdevError),
    /// The interface page or the server's state is not a usable vchan.
    Setup(SetupError),
    /// The guest's ring needs more pages than the daemon maps.
    TooManyGrants(usize),
    /// Binding or kicking the event channel failed.
    EventChannel(std::io::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Map(e) => write!(f, "mapping its pages: {e}"),
            ConnectError::Setup(e) => write!(f, "its vchan page is not usable: {e:?}"),
            ConnectError::TooManyGrants(n) => {
                write!(f, "its ring lists {n} grants, more than {MAX_REGION_PAGES}")
            }
            ConnectError::EventChannel(e) => write!(f, "event channel: {e}"),
        }
    }
}

fn ring(dev: &Arc<Gntdev>, domid: u16, grants: &[u32]) -> Result<Option<Region>, ConnectError> {
    if grants.is_empty() {
        return Ok(None);
    }
    if grants.len() > MAX_REGION_PAGES {
        return Err(ConnectError::TooManyGrants(grants.len()));
    }
    let region = GrantRegion::map(dev, domid, grants).map_err(ConnectError::Map)?;
    Ok(Some(Arc::new(region)))
}

/// Attaches to the vchan `offer` of guest `domid` and builds its connection.
pub fn connect(
    gntdev: &Arc<Gntdev>,
    evtchn_path: &Path,
    domid: u16,
    offer: Offer,
    root: Arc<GuestRoot>,
    handler: Arc<dyn Handler>,
    limits: Limits,
) -> Result<XenConnection, ConnectError> {
    let ctrl: Region =
        Arc::new(GrantRegion::map(gntdev, domid, &[offer.ring_ref]).map_err(ConnectError::Map)?);
    // The grant lists are read once, bounded by the validated orders.
    let probe = Probe::read(&*ctrl).map_err(ConnectError::Setup)?;
    let left = ring(gntdev, domid, &probe.left_grants)?;
    let right = ring(gntdev, domid, &probe.right_grants)?;
    let mut evtchn = XenEventChannel::bind(evtchn_path, domid, offer.port)
        .map_err(ConnectError::EventChannel)?;
    // However this process ends, the kernel clears our liveness byte and kicks the
    // guest: that is how it learns to offer the channel again.
    ctrl.set_unmap_notify(CLI_LIVE, evtchn.local_port())
        .map_err(ConnectError::Map)?;
    let (vchan, notify) =
        Vchan::client(probe.layout, ctrl, left, right).map_err(ConnectError::Setup)?;
    if notify.is_yes() {
        evtchn.notify().map_err(ConnectError::EventChannel)?;
    }
    let responder = Responder::new(vchan, Config::default());
    Ok(Connection::new(
        domid, root, responder, evtchn, handler, limits,
    ))
}
