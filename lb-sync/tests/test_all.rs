//! One integration-test binary for lb-sync: real nginx, app tasks and Marathon doubles on
//! 127.0.0.1, and lb-sync run as it ships, `paas-node lb-sync`.

mod lb_sync;
mod support;
