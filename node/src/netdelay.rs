//! `paas-node netdelay`: delays network packets in userspace, for chaos `delay` faults.
//!
//! The node kernels have no `tc netem` (CONFIG_NET_SCH_NETEM is unset) but do have NFQUEUE, so
//! the caller sends the packets to delay to an NFQUEUE with an iptables rule
//! (`-j NFQUEUE --queue-num N --queue-bypass`) and this program holds each queued packet for the
//! delay, plus or minus a uniform jitter, before accepting it. Jitter may reorder packets.
//!
//! Architecture Invariant: no packet is ever dropped. Every packet received is accepted, at its
//! release time or, when the program stops, at once. The kernel drops the packets still queued
//! when the listener goes away, so the held ones are accepted before the queue is closed; with
//! `--queue-bypass`, packets queued after that pass undelayed. The queue fails open: a packet
//! that does not fit in the kernel queue or our socket is accepted undelayed rather than dropped.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::signal::unix::{SignalKind, signal};

/// The netlink socket's receive buffer. Packets that find it full fail open (pass undelayed), so
/// it must absorb the bursts that arrive while the packet thread is not scheduled: each queued
/// packet takes about 1 KiB of it, and the default (~200 KiB) overflows within 0.1 s at a few
/// thousand packets/s on a busy node.
const SOCKET_RECEIVE_BUFFER: libc::c_int = 16 << 20;

/// How many packets the kernel holds for us at most; beyond that, fail-open accepts them
/// undelayed. A few thousand packets/s held for up to a second or so fit with room to spare.
const KERNEL_QUEUE_MAX_LEN: u32 = 65_536;

/// Flags of `paas-node netdelay`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The NFQUEUE number to bind, as given to the iptables rule's `--queue-num`.
    #[arg(long)]
    pub queue: u16,
    /// How long to hold each packet, in milliseconds.
    #[arg(long)]
    pub ms: u32,
    /// Each packet's delay is drawn uniformly from ms ± jitter-ms (never below 0).
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u32,
    /// Stop after this long (e.g. `30s`); without it, run until SIGTERM or SIGINT.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub run_for: Option<Duration>,
}

/// The delay given to each packet: `ms` plus a uniform offset in `-jitter_ms..=jitter_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    pub ms: u32,
    pub jitter_ms: u32,
}

impl Delay {
    /// How long to hold one packet; never negative, at most `ms + jitter_ms`.
    pub fn hold_for(&self, rng: &mut impl Rng) -> Duration {
        // Microseconds, so that small jitters still spread packets out.
        let base = i64::from(self.ms) * 1000;
        let jitter = i64::from(self.jitter_ms) * 1000;
        let offset = if jitter == 0 { 0 } else { rng.random_range(-jitter..=jitter) };
        Duration::from_micros((base + offset).max(0).unsigned_abs())
    }

    /// When a packet received at `received` is to be accepted.
    pub fn release_at(&self, received: Instant, rng: &mut impl Rng) -> Instant {
        received + self.hold_for(rng)
    }
}

/// Why `netdelay` could not run, or stopped before it was told to.
#[derive(Debug, thiserror::Error)]
pub enum NetdelayError {
    #[error("opening a netfilter queue socket")]
    Open(#[source] io::Error),
    #[error("binding NFQUEUE {queue} (another listener on it, or no CAP_NET_ADMIN?)")]
    Bind {
        queue: u16,
        #[source]
        source: io::Error,
    },
    #[error("configuring NFQUEUE {queue}: {setting}")]
    Configure {
        queue: u16,
        setting: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("finding the netfilter queue's socket")]
    FindSocket(#[source] io::Error),
    #[error("creating the stop channel")]
    StopChannel(#[source] io::Error),
    #[error("installing the {signal} handler")]
    Signal {
        signal: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("waiting for packets on NFQUEUE {queue}")]
    Poll {
        queue: u16,
        #[source]
        source: io::Error,
    },
    #[error("receiving a packet from NFQUEUE {queue}")]
    Receive {
        queue: u16,
        #[source]
        source: io::Error,
    },
    #[error("accepting a packet on NFQUEUE {queue}")]
    Verdict {
        queue: u16,
        #[source]
        source: io::Error,
    },
    #[error("the packet thread panicked")]
    Panicked(#[source] tokio::task::JoinError),
}

/// Packets accepted by a `netdelay` run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Accepted at their release time.
    pub on_time: u64,
    /// Still held when the program stopped, so accepted early.
    pub at_stop: u64,
}

/// Delays the packets of NFQUEUE `args.queue` until `args.run_for` has passed or SIGTERM/SIGINT
/// arrives, then accepts the packets still held and returns.
///
/// Fails when the queue cannot be bound (no CAP_NET_ADMIN, another listener on it) or the
/// netlink socket fails while running; even then, every packet held is accepted first.
pub async fn run(args: Args) -> Result<(), NetdelayError> {
    let mut terminate = signal(SignalKind::terminate()).map_err(|source| NetdelayError::Signal { signal: "SIGTERM", source })?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|source| NetdelayError::Signal { signal: "SIGINT", source })?;
    let delay = Delay {
        ms: args.ms,
        jitter_ms: args.jitter_ms,
    };
    let queue = open(args.queue)?;
    let until = args.run_for.map_or_else(
        || "until SIGTERM/SIGINT".to_owned(),
        |d| format!("for {}", humantime::format_duration(d)),
    );
    eprintln!("netdelay: queue {}, {} ms ± {} ms, {until}", args.queue, delay.ms, delay.jitter_ms);

    // Dropping `stop` closes its peer's other end, which wakes the packet thread's poll.
    let (stop, stopped) = UnixStream::pair().map_err(NetdelayError::StopChannel)?;
    let queue_num = args.queue;
    let mut packets = tokio::task::spawn_blocking(move || delay_packets(queue, queue_num, delay, stopped.as_fd(), StdRng::from_os_rng()));
    let deadline = async {
        match args.run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        // Cancel-safe: signal streams keep deliveries until received; the sleep holds no state.
        _ = terminate.recv() => None,
        _ = interrupt.recv() => None,
        _ = deadline => None,
        // Cancel-safe: polling a JoinHandle by reference leaves it to be awaited below.
        outcome = &mut packets => Some(outcome),
    };
    drop(stop);
    let outcome = match outcome {
        Some(outcome) => outcome,
        None => packets.await,
    };
    let (released, result) = outcome.map_err(NetdelayError::Panicked)?;
    eprintln!(
        "netdelay: delayed {} packets ({} released on time, {} early at stop)",
        released.on_time + released.at_stop,
        released.on_time,
        released.at_stop
    );
    result
}

/// An NFQUEUE binding and its netlink socket, to wait on.
struct BoundQueue {
    queue: nfq::Queue,
    // Valid as long as `queue` is: it is the queue's own socket.
    fd: RawFd,
}

/// Opens and binds NFQUEUE `queue_num`, failing open, copying only packet metadata.
fn open(queue_num: u16) -> Result<BoundQueue, NetdelayError> {
    let configure = |setting, source| NetdelayError::Configure {
        queue: queue_num,
        setting,
        source,
    };
    let mut queue = nfq::Queue::open().map_err(NetdelayError::Open)?;
    let fd = netfilter_socket().map_err(NetdelayError::FindSocket)?;
    grow_receive_buffer(fd).map_err(|e| configure("socket receive buffer", e))?;
    queue
        .bind(queue_num)
        .map_err(|source| NetdelayError::Bind { queue: queue_num, source })?;
    // We never look at or change the payload, so the kernel need not copy it to us.
    queue.set_copy_range(queue_num, 0).map_err(|e| configure("copy range", e))?;
    queue.set_fail_open(queue_num, true).map_err(|e| configure("fail open", e))?;
    queue
        .set_queue_max_len(queue_num, KERNEL_QUEUE_MAX_LEN)
        .map_err(|e| configure("queue length", e))?;
    // Set last: the configuration calls above wait for the kernel's acknowledgement.
    queue.set_nonblocking(true);
    Ok(BoundQueue { queue, fd })
}

/// Sets the socket's receive buffer to `SOCKET_RECEIVE_BUFFER`, beyond `net.core.rmem_max` when
/// we may (CAP_NET_ADMIN, which binding a queue needs anyway).
fn grow_receive_buffer(fd: RawFd) -> io::Result<()> {
    let set = |option| {
        let size = SOCKET_RECEIVE_BUFFER;
        let len = std::mem::size_of_val(&size) as libc::socklen_t;
        // SAFETY: `size` is valid for reads of `len` bytes for the duration of the call.
        let rc = unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, option, (&raw const size).cast(), len) };
        if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    };
    set(libc::SO_RCVBUFFORCE).or_else(|_| set(libc::SO_RCVBUF))
}

/// The socket `nfq::Queue::open` just opened: the process's only netlink socket of protocol
/// NETLINK_NETFILTER.
///
/// nfq 0.2.5 does not expose its socket; upstream implements `AsRawFd` for `Queue` since commit
/// 252315c, not yet released. Once it is, `queue.as_raw_fd()` replaces this.
fn netfilter_socket() -> io::Result<RawFd> {
    let sockopt = |fd: RawFd, option: libc::c_int| {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are valid for writes and `len` is `value`'s size; a
        // descriptor that is not a socket makes the call fail, not misbehave.
        let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, option, (&raw mut value).cast(), &raw mut len) };
        (rc == 0).then_some(value)
    };
    let mut found = None;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Ok(fd) = entry?.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        let netfilter =
            sockopt(fd, libc::SO_DOMAIN) == Some(libc::AF_NETLINK) && sockopt(fd, libc::SO_PROTOCOL) == Some(libc::NETLINK_NETFILTER);
        if netfilter && found.replace(fd).is_some() {
            return Err(io::Error::other("more than one netfilter netlink socket is open"));
        }
    }
    found.ok_or_else(|| io::Error::other("no netfilter netlink socket is open"))
}

/// A packet waiting for its release time.
struct Held {
    release: Instant,
    // Breaks ties in arrival order, so equal delays keep packets in order.
    seq: u64,
    message: nfq::Message,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    // Reversed, so that the max-heap `BinaryHeap` yields the earliest release first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.release, other.seq).cmp(&(self.release, self.seq))
    }
}

/// The packets of one queue and when each is due.
struct Delayer<R> {
    bound: BoundQueue,
    queue_num: u16,
    delay: Delay,
    rng: R,
    held: BinaryHeap<Held>,
    // Arrival count, for `Held::seq`.
    received: u64,
    released: Released,
}

/// Holds and releases packets until `stopped` becomes readable (its peer was dropped), then
/// accepts every packet still held. Returns the count released even when it fails.
fn delay_packets(
    bound: BoundQueue,
    queue_num: u16,
    delay: Delay,
    stopped: BorrowedFd<'_>,
    rng: impl Rng,
) -> (Released, Result<(), NetdelayError>) {
    let mut delayer = Delayer {
        bound,
        queue_num,
        delay,
        rng,
        held: BinaryHeap::new(),
        received: 0,
        released: Released::default(),
    };
    let result = delayer.hold_and_release(stopped);
    // Packets queued after the last receive would be dropped when the socket closes, so first
    // make the kernel stop queueing (new packets fail open), then take what it already queued.
    let drained = stop_queueing(delayer.bound.fd, queue_num).and_then(|()| delayer.receive_all());
    let flushed = delayer.release_all();
    (delayer.released, result.and(drained).and(flushed))
}

/// Sets the kernel queue's length to 0, so that with fail-open every packet from now on is
/// accepted without being queued to us.
///
/// Sent without asking for an acknowledgement: nfq reads acknowledgements by discarding the
/// packets received before them, and those would then never get a verdict. An error still
/// comes back, from the next receive.
fn stop_queueing(fd: RawFd, queue_num: u16) -> Result<(), NetdelayError> {
    let message = queue_max_len_message(queue_num, 0);
    // SAFETY: `message` is valid for reads of its length for the duration of the call.
    let sent = unsafe { libc::send(fd, message.as_ptr().cast(), message.len(), 0) };
    if sent < 0 {
        return Err(NetdelayError::Configure {
            queue: queue_num,
            setting: "queue length 0 at stop",
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// An nfnetlink NFQNL_MSG_CONFIG request setting NFQA_CFG_QUEUE_MAXLEN, without NLM_F_ACK.
fn queue_max_len_message(queue_num: u16, len: u32) -> [u8; 28] {
    let mut message = [0u8; 28];
    // struct nlmsghdr, in host order: length, type, flags, sequence, port id.
    message[0..4].copy_from_slice(&28u32.to_ne_bytes());
    let message_type = ((libc::NFNL_SUBSYS_QUEUE as u16) << 8) | libc::NFQNL_MSG_CONFIG as u16;
    message[4..6].copy_from_slice(&message_type.to_ne_bytes());
    message[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    // struct nfgenmsg: family AF_UNSPEC, version NFNETLINK_V0, then the queue in network order.
    message[18..20].copy_from_slice(&queue_num.to_be_bytes());
    // struct nlattr in host order, then its value in network order.
    message[20..22].copy_from_slice(&8u16.to_ne_bytes());
    message[22..24].copy_from_slice(&(libc::NFQA_CFG_QUEUE_MAXLEN as u16).to_ne_bytes());
    message[24..28].copy_from_slice(&len.to_be_bytes());
    message
}

impl<R: Rng> Delayer<R> {
    fn hold_and_release(&mut self, stopped: BorrowedFd<'_>) -> Result<(), NetdelayError> {
        loop {
            let now = Instant::now();
            while self.held.peek().is_some_and(|p| p.release <= now) {
                let packet = self.held.pop().expect("peeked");
                self.accept(packet)?;
                self.released.on_time += 1;
            }
            let timeout = self.held.peek().map(|p| p.release - now);
            let ready = wait_readable(self.bound.fd, stopped.as_raw_fd(), timeout).map_err(|source| NetdelayError::Poll {
                queue: self.queue_num,
                source,
            })?;
            if ready.stopped {
                return Ok(());
            }
            if ready.queue {
                self.receive_all()?;
            }
        }
    }

    /// Takes every packet waiting on the socket, giving each its release time.
    fn receive_all(&mut self) -> Result<(), NetdelayError> {
        loop {
            match self.bound.queue.recv() {
                Ok(mut message) => {
                    message.set_verdict(nfq::Verdict::Accept);
                    self.held.push(Held {
                        release: self.delay.release_at(Instant::now(), &mut self.rng),
                        seq: self.received,
                        message,
                    });
                    self.received += 1;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(NetdelayError::Receive {
                        queue: self.queue_num,
                        source,
                    });
                }
            }
        }
    }

    /// Accepts every packet still held, now.
    fn release_all(&mut self) -> Result<(), NetdelayError> {
        let mut result = Ok(());
        for packet in std::mem::take(&mut self.held).into_vec() {
            match self.accept(packet) {
                Ok(()) => self.released.at_stop += 1,
                // Keep going: every other held packet still deserves its verdict.
                Err(e) => result = Err(e),
            }
        }
        result
    }

    fn accept(&mut self, packet: Held) -> Result<(), NetdelayError> {
        self.bound.queue.verdict(packet.message).map_err(|source| NetdelayError::Verdict {
            queue: self.queue_num,
            source,
        })
    }
}

struct Ready {
    queue: bool,
    stopped: bool,
}

/// Waits until the queue socket or the stop socket is readable, or `timeout` passes.
fn wait_readable(queue: RawFd, stopped: RawFd, timeout: Option<Duration>) -> io::Result<Ready> {
    let mut fds = [
        libc::pollfd {
            fd: queue,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: stopped,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let timeout_ms = timeout.map_or(-1, poll_timeout_ms);
    // SAFETY: `fds` is a valid array of two pollfds that outlives the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == ErrorKind::Interrupted {
            return Ok(Ready {
                queue: false,
                stopped: false,
            });
        }
        return Err(e);
    }
    let readable = |fd: &libc::pollfd| fd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
    Ok(Ready {
        queue: readable(&fds[0]),
        stopped: readable(&fds[1]),
    })
}

/// Rounds up, so that the wait never ends before the next release and spins.
fn poll_timeout_ms(timeout: Duration) -> i32 {
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(delay: Delay, seed: u64, n: usize) -> Vec<Duration> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| delay.hold_for(&mut rng)).collect()
    }

    #[test]
    fn hold_without_jitter_is_exactly_the_delay() {
        let delay = Delay { ms: 200, jitter_ms: 0 };
        assert!(draws(delay, 1, 100).iter().all(|d| *d == Duration::from_millis(200)));
    }

    #[test]
    fn hold_with_jitter_stays_within_bounds_and_spreads_over_them() {
        let delay = Delay { ms: 200, jitter_ms: 50 };
        let holds = draws(delay, 7, 10_000);
        let (min, max) = (holds.iter().min().unwrap(), holds.iter().max().unwrap());
        assert!(*min >= Duration::from_millis(150), "{min:?}");
        assert!(*max <= Duration::from_millis(250), "{max:?}");
        // Uniform over 100 ms: 10 000 draws reach within 1 ms of both ends.
        assert!(*min < Duration::from_millis(151), "{min:?}");
        assert!(*max > Duration::from_millis(249), "{max:?}");
        let mean = holds.iter().sum::<Duration>() / holds.len() as u32;
        assert!(mean > Duration::from_millis(198) && mean < Duration::from_millis(202), "{mean:?}");
    }

    #[test]
    fn hold_never_goes_below_zero_when_jitter_exceeds_the_delay() {
        let delay = Delay { ms: 10, jitter_ms: 50 };
        let holds = draws(delay, 3, 10_000);
        assert!(holds.iter().all(|d| *d <= Duration::from_millis(60)));
        // Offsets below -10 ms (40% of draws) are clamped to zero.
        let zeros = holds.iter().filter(|d| d.is_zero()).count();
        assert!((3_500..4_500).contains(&zeros), "{zeros}");
    }

    #[test]
    fn the_same_seed_gives_the_same_release_times() {
        let delay = Delay { ms: 200, jitter_ms: 50 };
        let start = Instant::now();
        let release = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..10).map(|_| delay.release_at(start, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(release(42), release(42));
        assert_ne!(release(42), release(43));
    }

    #[test]
    fn queue_max_len_message_is_an_unacknowledged_nfqueue_config_request() {
        let message = queue_max_len_message(7, 0x0102_0304);
        assert_eq!(u32::from_ne_bytes(message[0..4].try_into().unwrap()), 28);
        // NFNL_SUBSYS_QUEUE (3) << 8 | NFQNL_MSG_CONFIG (2), NLM_F_REQUEST only.
        assert_eq!(u16::from_ne_bytes([message[4], message[5]]), 0x0302);
        assert_eq!(u16::from_ne_bytes([message[6], message[7]]), 1);
        assert_eq!(message[16..20], [0, 0, 0, 7]);
        // NFQA_CFG_QUEUE_MAXLEN (3), value big-endian.
        assert_eq!(u16::from_ne_bytes([message[22], message[23]]), 3);
        assert_eq!(message[24..28], [1, 2, 3, 4]);
    }

    #[test]
    fn poll_timeout_rounds_up_so_release_is_never_early() {
        assert_eq!(poll_timeout_ms(Duration::ZERO), 0);
        assert_eq!(poll_timeout_ms(Duration::from_micros(1)), 1);
        assert_eq!(poll_timeout_ms(Duration::from_millis(200)), 200);
        assert_eq!(poll_timeout_ms(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
