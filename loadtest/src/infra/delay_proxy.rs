//! Where the store is put behind a network: a TCP proxy between the replicas and Redis that
//! holds every chunk of bytes for a fixed time in each direction, as a link of that one-way
//! latency would. This kernel has no `netem`, so the experiment `store-latency` uses this
//! instead; the report says so.
//!
//! It runs on plain threads of this process (two per connection, a handful of connections:
//! each replica keeps one multiplexed connection to Redis), sleeping with the OS's
//! high-resolution timers rather than an async runtime's millisecond wheel, so a 0.5 ms
//! delay is 0.5 ms and not 1. Its CPU counts as the load generator's.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct DelayProxy {
    port: u16,
    stopping: Arc<AtomicBool>,
    /// Every socket opened, so that stopping ends every pump thread.
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`, each
    /// direction delayed by `one_way`.
    pub fn start(upstream: SocketAddr, one_way: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stopping = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stopping, sockets) = (Arc::clone(&stopping), Arc::clone(&sockets));
            std::thread::Builder::new()
                .name("delay-proxy".into())
                .spawn(move || {
                    for client in listener.incoming() {
                        if stopping.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(client) = client else { continue };
                        let Ok(server) = TcpStream::connect(upstream) else {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                            sockets.lock().unwrap().extend([c, s]);
                        }
                        let _ = pump(&client, &server, one_way);
                        let _ = pump(&server, &client, one_way);
                    }
                })?
        };
        Ok(Self {
            port,
            stopping,
            sockets,
            acceptor: Some(acceptor),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees `stopping`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for s in self.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies `from` to `to`: a reader thread stamps each chunk with the time it is due, a
/// writer thread sends it then. Order is kept; nothing is dropped.
fn pump(from: &TcpStream, to: &TcpStream, delay: Duration) -> std::io::Result<()> {
    let (mut reader, mut writer) = (from.try_clone()?, to.try_clone()?);
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::Builder::new()
        .name("delay-proxy-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send((Instant::now() + delay, buf[..n].to_vec()))
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        })?;
    std::thread::Builder::new()
        .name("delay-proxy-write".into())
        .spawn(move || {
            // The reader has ended (its sender is dropped) once everything read is sent.
            while let Ok((due, chunk)) = rx.recv() {
                let wait = due.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                if writer.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = writer.shutdown(Shutdown::Write);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server behind the proxy: a round trip takes twice the delay, and every
    /// byte comes back in order.
    #[test]
    fn a_round_trip_takes_twice_the_delay_and_keeps_every_byte() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = echo.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = echo.accept().unwrap();
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => s.write_all(&buf[..n]).unwrap(),
                }
            }
        });
        let mut proxy = DelayProxy::start(addr, Duration::from_millis(5)).unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        c.set_nodelay(true).unwrap();
        let mut rtts = Vec::new();
        for i in 0..20u8 {
            let t = Instant::now();
            c.write_all(&[i; 100]).unwrap();
            let mut got = [0u8; 100];
            c.read_exact(&mut got).unwrap();
            rtts.push(t.elapsed());
            assert_eq!(got, [i; 100]);
        }
        rtts.sort();
        let median = rtts[rtts.len() / 2];
        assert!(
            median >= Duration::from_millis(10) && median < Duration::from_millis(30),
            "median round trip {median:?} with 5 ms each way"
        );
        drop(c);
        proxy.stop();
        server.join().unwrap();
    }
}
