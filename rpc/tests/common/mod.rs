//! Shared set-up for the integration tests: a server and a client end over heap pages.
#![allow(dead_code)] // each test binary uses a different part

use std::sync::Arc;

use rpc::{HeapMem, Layout, Placement, Probe, Side, Vchan};

pub type Mem = Arc<HeapMem>;

/// The shared pages of one channel, kept so tests can play a hostile peer on them.
#[derive(Clone)]
pub struct Pages {
    pub layout: Layout,
    pub ctrl: Mem,
    pub left: Option<Mem>,
    pub right: Option<Mem>,
}

impl Pages {
    pub fn new(left_order: u16, right_order: u16) -> Pages {
        let layout = Layout::new(left_order, right_order).expect("valid orders");
        let ext = |side| match layout.placement(side) {
            Placement::InPage { .. } => None,
            Placement::Granted { .. } => Some(Arc::new(HeapMem::new(layout.ring_size(side)))),
        };
        Pages {
            layout,
            ctrl: Arc::new(HeapMem::new(rpc::layout::PAGE_SIZE)),
            left: ext(Side::Left),
            right: ext(Side::Right),
        }
    }

    /// Grant references the "guest" hands out: 100, 101, ...
    pub fn grants(&self) -> Vec<u32> {
        (0..self.layout.grant_count() as u32)
            .map(|i| 100 + i)
            .collect()
    }

    pub fn server(&self) -> Vchan<Mem> {
        Vchan::server(
            self.layout,
            self.ctrl.clone(),
            self.left.clone(),
            self.right.clone(),
            &self.grants(),
        )
        .expect("server set-up")
    }

    pub fn client(&self) -> Vchan<Mem> {
        let probe = Probe::read(&*self.ctrl).expect("probe");
        assert_eq!(probe.layout, self.layout);
        let (client, kick) = Vchan::client(
            probe.layout,
            self.ctrl.clone(),
            self.left.clone(),
            self.right.clone(),
        )
        .expect("client attach");
        assert!(kick.is_yes(), "attaching wakes the server");
        client
    }
}

/// A connected (server, client) pair and its pages.
pub fn pair(left_order: u16, right_order: u16) -> (Vchan<Mem>, Vchan<Mem>, Pages) {
    let pages = Pages::new(left_order, right_order);
    let server = pages.server();
    let client = pages.client();
    (server, client, pages)
}
