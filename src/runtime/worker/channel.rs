//! One end of the socket between a host and a worker: whole frames in and
//! out, each wait bounded by a deadline.

use super::protocol::{self, HEADER};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a receiver polls its socket before it sleeps. A round trip to
/// another process is mostly the wake-up of a sleeping one (`make bench`:
/// tens of µs through the scheduler, about 1 µs when the other side
/// polls), and a call of a plugin in a worker, or the worker's next
/// request, mostly arrives within this. At most this much CPU time is
/// spent per wait; one-CPU machines, where polling would only delay the
/// other side, never poll.
const SPIN: Duration = Duration::from_micros(50);

fn spinning_pays() -> bool {
    static SEVERAL_CPUS: OnceLock<bool> = OnceLock::new();
    *SEVERAL_CPUS.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// Why a frame could not be sent or received.
#[derive(Debug)]
pub enum ChannelError {
    /// The other end is gone (closed, reset, or died mid-frame).
    Closed,
    /// The deadline passed first.
    TimedOut,
    /// A frame larger than the reader's limit, or of length 0.
    Oversized(usize),
    /// Any other failure of the socket.
    Io(std::io::Error),
}

/// A connected stream socket.
pub struct Channel {
    socket: OwnedFd,
}

impl Channel {
    pub fn new(socket: OwnedFd) -> Channel {
        Channel { socket }
    }

    fn fd(&self) -> i32 {
        self.socket.as_raw_fd()
    }

    /// Sends all of `parts` as one frame's bytes.
    pub fn send(&self, parts: &[IoSlice<'_>], deadline: Option<Instant>) -> Result<(), ChannelError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut sent = 0usize;
        while sent < total {
            // The parts not yet sent, the first one cut where sending stopped.
            let mut skip = sent;
            let mut iov: Vec<libc::iovec> = Vec::with_capacity(parts.len());
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                iov.push(libc::iovec { iov_base: part[skip..].as_ptr() as *mut libc::c_void, iov_len: part.len() - skip });
                skip = 0;
            }
            // SAFETY: a zeroed msghdr is valid; the iovecs point into `parts`.
            let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
            message.msg_iov = iov.as_mut_ptr();
            message.msg_iovlen = iov.len() as _;
            // SAFETY: valid socket and message. MSG_NOSIGNAL: a dead worker
            // is an error here, not a SIGPIPE for the host.
            let n = unsafe { libc::sendmsg(self.fd(), &message, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
            if n >= 0 {
                sent += n as usize;
                continue;
            }
            let error = std::io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => self.wait(libc::POLLOUT, deadline)?,
                Some(libc::EPIPE) | Some(libc::ECONNRESET) => return Err(ChannelError::Closed),
                _ => return Err(ChannelError::Io(error)),
            }
        }
        Ok(())
    }

    /// Sends one frame of `kind` with `body`.
    pub fn send_frame(&self, kind: u8, body: &[u8], deadline: Option<Instant>) -> Result<(), ChannelError> {
        let header = protocol::header(kind, body.len());
        self.send(&[IoSlice::new(&header), IoSlice::new(body)], deadline)
    }

    /// Receives one frame: its kind, and its body in `body` (replaced).
    /// A frame whose body is over `limit` bytes is refused before anything
    /// is allocated for it.
    pub fn receive(&self, body: &mut Vec<u8>, limit: usize, deadline: Option<Instant>) -> Result<u8, ChannelError> {
        let mut header = [0u8; HEADER];
        // Past its deadline a reply is late even if it is there by now.
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(ChannelError::TimedOut);
        }
        // A message is awaited (the peer is working on it): poll for a
        // moment, then sleep, instead of a read that would find nothing;
        // its body usually arrives with its header.
        if !self.readable_soon() {
            self.wait(libc::POLLIN, deadline)?;
        }
        self.read_exact(&mut header, deadline)?;
        if header[..4] == [0, 0, 0, 0] {
            return Err(ChannelError::Oversized(0));
        }
        let (len, kind) = protocol::parse_header(&header);
        if len > limit {
            return Err(ChannelError::Oversized(len));
        }
        body.clear();
        body.resize(len, 0);
        self.read_exact(body, deadline)?;
        Ok(kind)
    }

    fn read_exact(&self, mut buf: &mut [u8], deadline: Option<Instant>) -> Result<(), ChannelError> {
        while !buf.is_empty() {
            // SAFETY: valid socket, `buf` is writable for its length.
            let n = unsafe { libc::recv(self.fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n > 0 {
                buf = &mut buf[n as usize..];
                continue;
            }
            if n == 0 {
                return Err(ChannelError::Closed);
            }
            let error = std::io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => self.wait(libc::POLLIN, deadline)?,
                Some(libc::ECONNRESET) => return Err(ChannelError::Closed),
                _ => return Err(ChannelError::Io(error)),
            }
        }
        Ok(())
    }

    /// Whether the socket has something to read (or an end or error to
    /// report) within [`SPIN`], polled without sleeping.
    fn readable_soon(&self) -> bool {
        if !spinning_pays() {
            return false;
        }
        let started = Instant::now();
        loop {
            let mut byte = 0u8;
            // SAFETY: valid socket; one writable byte.
            let n = unsafe { libc::recv(self.fd(), (&mut byte as *mut u8).cast(), 1, libc::MSG_DONTWAIT | libc::MSG_PEEK) };
            if n >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN) {
                return true;
            }
            if started.elapsed() >= SPIN {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// Waits until the socket is ready for `events`, or the deadline.
    fn wait(&self, events: libc::c_short, deadline: Option<Instant>) -> Result<(), ChannelError> {
        loop {
            let timeout = match deadline {
                None => -1,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ChannelError::TimedOut);
                    }
                    // Rounded up: never wake just before the deadline.
                    i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
                }
            };
            let mut poll = libc::pollfd { fd: self.fd(), events, revents: 0 };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut poll, 1, timeout) };
            if n > 0 {
                // Readiness, or an error/hangup the next read or send reports.
                return Ok(());
            }
            if n < 0 {
                let error = std::io::Error::last_os_error();
                if error.raw_os_error() != Some(libc::EINTR) {
                    return Err(ChannelError::Io(error));
                }
            }
        }
    }
}
