//! DatagramServer: echo from the server's address, oversized datagrams counted and dropped,
//! the in-flight limit, errors contained, graceful stop and restart, inherited sockets, bind and
//! receive errors, socket options.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ginkgo_api::Runtime;
use ginkgo_api::net::UdpSocket;
use ginkgo_api::service::{Cause, Hook, Options, State, tree};
use ginkgo_api::sync::Event;
use ginkgo_api::time::{sleep, timeout};
use ginkgo_net::{Datagram, DatagramBind, DatagramOptions, DatagramServer};

use crate::support::{DropProbe, counter, eventually};

const LIMIT: Duration = Duration::from_secs(30);

/// Replies with the payload.
async fn echo<R: Runtime>(datagram: Datagram<R>) -> io::Result<()> {
    datagram.reply(&datagram.payload).await?;
    Ok(())
}

async fn client<R: Runtime>() -> UdpSocket<R> {
    UdpSocket::<R>::bind("127.0.0.1:0")
        .await
        .expect("bind a client")
}

/// Receives one datagram within [`LIMIT`]: its bytes and sender.
async fn receive<R: Runtime>(socket: &UdpSocket<R>) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 70_000];
    let (n, from) = timeout::<R, _>(LIMIT, socket.recv_from(&mut buf))
        .await
        .expect("a reply in time")
        .expect("receive a reply");
    buf.truncate(n);
    (buf, from)
}

/// A switch handlers wait on until the case opens it.
#[derive(Default)]
struct Gate {
    open: AtomicBool,
    opened: Event,
}

impl Gate {
    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.opened.notify(usize::MAX);
    }

    async fn wait(&self) {
        while !self.open.load(Ordering::SeqCst) {
            let listener = self.opened.listen();
            if self.open.load(Ordering::SeqCst) {
                return;
            }
            listener.await;
        }
    }
}

/// Four clients each send 50 datagrams in lockstep; every one is answered with its own bytes,
/// from the server's address, and the counters say so.
pub async fn datagram_echo_replies_from_the_server_address<R: Runtime>() {
    let server = DatagramServer::<R, _>::new("echo", "127.0.0.1:0", echo::<R>);
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let server = address.local_addr().expect("bound once started");
    assert_ne!(server.port(), 0);
    let clients: Vec<_> = (0..4u32)
        .map(|i| {
            ginkgo_api::spawn::<R, _>(async move {
                let socket = client::<R>().await;
                for j in 0..50u32 {
                    let message = format!("client {i} datagram {j}");
                    socket
                        .send_to(message.as_bytes(), server)
                        .await
                        .expect("send");
                    let (reply, from) = receive::<R>(&socket).await;
                    assert_eq!(reply, message.as_bytes(), "client {i} got its own bytes");
                    assert_eq!(from, server, "the reply comes from the server's address");
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("client task");
    }
    eventually::<R>("all replies counted", LIMIT, || {
        counter(&tree, "replies_sent") == 200
    })
    .await;
    eventually::<R>("no handler in flight", LIMIT, || {
        counter(&tree, "datagrams_in_flight") == 0
    })
    .await;
    assert_eq!(counter(&tree, "datagrams_received"), 200);
    assert_eq!(counter(&tree, "datagrams_truncated"), 0);
    assert_eq!(counter(&tree, "handler_errors"), 0);
    assert_eq!(counter(&tree, "receive_errors"), 0);
    assert!(tree.stop().await.is_clean());
}

/// A datagram larger than `max_datagram_size` is counted and never handed on, cut or whole;
/// one of exactly the limit is served, and the next normal one too. With the default limit the
/// largest IPv4 datagram (65,507 bytes) arrives whole.
pub async fn datagram_oversized_is_counted_not_cut<R: Runtime>() {
    let seen = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let s = seen.clone();
    let server = DatagramServer::<R, _>::new("small", "127.0.0.1:0", move |d: Datagram<R>| {
        let seen = s.clone();
        async move {
            seen.lock().expect("lock").push(d.payload.clone());
            d.reply(&d.payload).await.map(drop)
        }
    })
    .max_datagram_size(16);
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let server = address.local_addr().expect("bound");
    let socket = client::<R>().await;
    for oversized in [17, 100, 1500] {
        socket
            .send_to(&vec![b'x'; oversized], server)
            .await
            .expect("send");
    }
    let exact = b"sixteen bytes..!";
    socket.send_to(exact, server).await.expect("send");
    let (reply, _) = receive::<R>(&socket).await;
    assert_eq!(reply, exact, "the first reply is for the datagram that fit");
    socket.send_to(b"next", server).await.expect("send");
    let (reply, _) = receive::<R>(&socket).await;
    assert_eq!(reply, b"next");
    assert_eq!(counter(&tree, "datagrams_truncated"), 3);
    assert_eq!(counter(&tree, "datagrams_received"), 5);
    assert_eq!(
        *seen.lock().expect("lock"),
        [exact.to_vec(), b"next".to_vec()],
        "the handler saw only the datagrams that fit, whole"
    );
    assert!(tree.stop().await.is_clean());

    let server = DatagramServer::<R, _>::new("default", "127.0.0.1:0", echo::<R>);
    let address = server.address();
    let whole = ginkgo_api::service::tree::<R>(server);
    whole.start().await.expect("start");
    let server = address.local_addr().expect("bound");
    let largest: Vec<u8> = (0..65_507u32).map(|i| (i % 251) as u8).collect();
    socket.send_to(&largest, server).await.expect("send");
    let (reply, _) = receive::<R>(&socket).await;
    assert!(reply == largest, "the 65,507-byte datagram came back whole");
    assert_eq!(counter(&whole, "datagrams_truncated"), 0);
    assert!(whole.stop().await.is_clean());
}

/// With `max_in_flight(2)` and handlers held at a gate, two run and the server reads no
/// further; once the gate opens every datagram is served, never more than two at once.
pub async fn datagram_max_in_flight_holds<R: Runtime>() {
    let gate = Arc::new(Gate::default());
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (g, r, m) = (gate.clone(), running.clone(), most.clone());
    let server = DatagramServer::<R, _>::new("gated", "127.0.0.1:0", move |d: Datagram<R>| {
        let (gate, running, most) = (g.clone(), r.clone(), m.clone());
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            gate.wait().await;
            running.fetch_sub(1, Ordering::SeqCst);
            d.reply(&d.payload).await.map(drop)
        }
    })
    .max_in_flight(2);
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let server = address.local_addr().expect("bound");
    let socket = client::<R>().await;
    for i in 0..6u8 {
        socket.send_to(&[i], server).await.expect("send");
    }
    eventually::<R>("two handlers running", LIMIT, || {
        running.load(Ordering::SeqCst) == 2
    })
    .await;
    sleep::<R>(Duration::from_millis(100)).await;
    assert_eq!(
        running.load(Ordering::SeqCst),
        2,
        "never more than the limit"
    );
    assert_eq!(
        counter(&tree, "datagrams_received"),
        2,
        "at the limit the rest stay in the socket's buffer, unread"
    );
    assert_eq!(counter(&tree, "datagrams_in_flight"), 2);
    gate.open();
    let mut replies = Vec::new();
    for _ in 0..6 {
        replies.extend(receive::<R>(&socket).await.0);
    }
    replies.sort_unstable();
    assert_eq!(replies, [0, 1, 2, 3, 4, 5], "every datagram served once");
    assert_eq!(most.load(Ordering::SeqCst), 2);
    assert_eq!(counter(&tree, "datagrams_received"), 6);
    assert!(tree.stop().await.is_clean());
}

/// A handler that panics (inside its future or before returning it) or returns an error is
/// counted in `handler_errors`, and the server keeps serving.
pub async fn datagram_handler_errors_are_contained<R: Runtime>() {
    let server = DatagramServer::<R, _>::new("fragile", "127.0.0.1:0", |d: Datagram<R>| {
        if d.payload == b"early" {
            panic!("panics before returning its future");
        }
        async move {
            match d.payload.as_slice() {
                b"panic" => panic!("panics in its future"),
                b"error" => Err(io::Error::other("returns an error")),
                _ => d.reply(&d.payload).await.map(drop),
            }
        }
    });
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let server = address.local_addr().expect("bound");
    let socket = client::<R>().await;
    for round in 0..2 {
        for bad in [&b"panic"[..], b"error", b"early"] {
            socket.send_to(bad, server).await.expect("send");
        }
        let good = format!("still serving {round}");
        socket.send_to(good.as_bytes(), server).await.expect("send");
        let (reply, _) = receive::<R>(&socket).await;
        assert_eq!(reply, good.as_bytes());
        eventually::<R>("the errors counted", LIMIT, || {
            counter(&tree, "handler_errors") == 3 * (round + 1)
        })
        .await;
        assert_eq!(tree.state(), State::Ready, "the server keeps serving");
    }
    // Counted once `send_to` has returned, which may be after the client has the reply.
    eventually::<R>("both replies counted", LIMIT, || {
        counter(&tree, "replies_sent") == 2
    })
    .await;
    assert!(tree.stop().await.is_clean());
}

/// Stopping stops reading at once and lets a handler in flight finish (its reply arrives);
/// then the socket is closed (its port can be bound again), and the same tree starts again on
/// the same port.
pub async fn datagram_graceful_stop_and_restart<R: Runtime>() {
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr").port()
    };
    let entered = Arc::new(AtomicUsize::new(0));
    let e = entered.clone();
    let server = DatagramServer::<R, _>::new(
        "slow",
        format!("127.0.0.1:{port}"),
        move |d: Datagram<R>| {
            let entered = e.clone();
            async move {
                entered.fetch_add(1, Ordering::SeqCst);
                // A slow request: the stop arrives while it is being served.
                sleep::<R>(Duration::from_millis(300)).await;
                let mut reply = b"done ".to_vec();
                reply.extend_from_slice(&d.payload);
                d.reply(&reply).await.map(drop)
            }
        },
    );
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let server = address.local_addr().expect("bound");
    assert_eq!(server.port(), port);
    let socket = client::<R>().await;
    socket.send_to(b"work", server).await.expect("send");
    eventually::<R>("the handler runs", LIMIT, || {
        entered.load(Ordering::SeqCst) == 1
    })
    .await;
    let stopping = {
        let tree = tree.clone();
        ginkgo_api::spawn::<R, _>(async move { tree.stop().await })
    };
    let (reply, from) = receive::<R>(&socket).await;
    assert_eq!(
        (reply.as_slice(), from),
        (&b"done work"[..], server),
        "the in-flight handler finished and replied"
    );
    let report = stopping.await.expect("stop task");
    assert!(report.is_clean(), "{report}");
    assert_eq!(address.local_addr(), None, "the address is cleared");

    // Nothing answers now, and nothing holds the port: a plain socket can bind it.
    socket.send_to(b"anyone?", server).await.expect("send");
    let mut buf = [0u8; 64];
    let answer = timeout::<R, _>(Duration::from_millis(300), socket.recv_from(&mut buf)).await;
    // Times out (or, were the client told of the ICMP error, fails): no datagram comes back.
    assert!(
        !matches!(answer, Ok(Ok(_))),
        "a stopped server answers nothing: {answer:?}"
    );
    assert_eq!(
        entered.load(Ordering::SeqCst),
        1,
        "no handler ran after stop"
    );
    drop(std::net::UdpSocket::bind(server).expect("the server's socket is closed"));

    tree.start().await.expect("the same tree starts again");
    assert_eq!(address.local_addr(), Some(server), "on the same port");
    socket.send_to(b"again", server).await.expect("send");
    let (reply, _) = receive::<R>(&socket).await;
    assert_eq!(reply, b"done again");
    assert_eq!(
        counter(&tree, "datagrams_received"),
        2,
        "counters outlive restarts"
    );
    assert!(tree.stop().await.is_clean());
}

/// A handler that ignores its shutdown is aborted at the server's own stop timeout
/// ([`DatagramServer::stop_timeout`]), not the 5 s default: the stop waits that long, comes
/// back clean, and the handler's future is dropped.
pub async fn datagram_stop_timeout_aborts_a_stuck_handler<R: Runtime>() {
    let stop_timeout = Duration::from_millis(200);
    let (probe, dropped) = DropProbe::new();
    let probe = Arc::new(Mutex::new(Some(probe)));
    let server = DatagramServer::<R, _>::new("stuck", "127.0.0.1:0", move |d: Datagram<R>| {
        let probe = probe.lock().expect("probe").take();
        async move {
            let _held = (probe, d);
            std::future::pending::<()>().await;
        }
    })
    .stop_timeout(stop_timeout);
    let address = server.address();
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    let socket = client::<R>().await;
    socket
        .send_to(b"work", address.local_addr().expect("bound"))
        .await
        .expect("send");
    eventually::<R>("the handler runs", LIMIT, || {
        counter(&tree, "datagrams_in_flight") == 1
    })
    .await;
    let began = Instant::now();
    let report = tree.stop().await;
    let took = began.elapsed();
    assert!(report.is_clean(), "{report}");
    assert!(took >= stop_timeout, "waited for the handler: {took:?}");
    let default = Options::default().stop_timeout;
    assert!(
        took < default,
        "stopped at the server's stop timeout, not the {default:?} default: {took:?}"
    );
    assert!(dropped.load(Ordering::SeqCst), "the handler was aborted");
    assert_eq!(address.local_addr(), None, "the socket is closed");
}

/// A socket the test bound (socket activation) is served, duplicated at each start: while the
/// server is stopped a datagram waits in its buffer and is served after the next start.
pub async fn datagram_inherited_socket_is_served<R: Runtime>() {
    let inherited = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = inherited.local_addr().expect("addr");
    let server = DatagramServer::<R, _>::new("activated", inherited, echo::<R>);
    let address = server.address();
    let tree = tree::<R>(server);
    let socket = client::<R>().await;
    tree.start().await.expect("start");
    assert_eq!(address.local_addr(), Some(addr));
    socket.send_to(b"first", addr).await.expect("send");
    assert_eq!(receive::<R>(&socket).await, (b"first".to_vec(), addr));
    assert!(tree.stop().await.is_clean());

    socket.send_to(b"queued", addr).await.expect("send");
    tree.start().await.expect("start again");
    assert_eq!(
        receive::<R>(&socket).await,
        (b"queued".to_vec(), addr),
        "sent while stopped, kept by the inherited socket, served after the start"
    );
    assert!(tree.stop().await.is_clean());
}

/// Binding a port another UDP socket holds fails the start; the message names the address and
/// the io::Error keeps its kind and OS error code.
pub async fn datagram_bind_error_names_the_address<R: Runtime>() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let clash = tree::<R>(DatagramServer::<R, _>::new("clash", addr, echo::<R>));
    let failure = clash.start().await.expect_err("address in use");
    assert!(
        matches!(
            failure.cause(),
            Cause::HookError {
                hook: Hook::Start,
                ..
            }
        ),
        "{failure}"
    );
    assert!(failure.to_string().contains(&addr.to_string()), "{failure}");
    let source = std::error::Error::source(&failure).expect("the hook's error");
    let io = source
        .downcast_ref::<io::Error>()
        .unwrap_or_else(|| panic!("not an io::Error: {source:?}"));
    assert_eq!(io.kind(), io::ErrorKind::AddrInUse, "{io}");
    assert_eq!(
        ginkgo_api::io::raw_os_error(io),
        Some(rustix::io::Errno::ADDRINUSE.raw_os_error()),
        "{io:?}"
    );
    drop(taken);
}

/// A receive error does not stop the server: on a connected (inherited) socket Linux reports
/// the ICMP port unreachable of a reply to a closed port as `ECONNREFUSED` to the next
/// receive; it is counted once, and the next datagram is served.
pub async fn datagram_receive_errors_do_not_stop_the_server<R: Runtime>() {
    let first = client::<R>().await;
    let peer = first.local_addr().expect("addr");
    let inherited = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    inherited.connect(peer).expect("connect to the one peer");
    let addr = inherited.local_addr().expect("addr");
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let server = DatagramServer::<R, _>::new("connected", inherited, move |d: Datagram<R>| {
        let gate = g.clone();
        async move {
            gate.wait().await;
            d.reply(&d.payload).await.map(drop)
        }
    });
    let tree = tree::<R>(server);
    tree.start().await.expect("start");
    first.send_to(b"late", addr).await.expect("send");
    eventually::<R>("the datagram is in flight", LIMIT, || {
        counter(&tree, "datagrams_in_flight") == 1
    })
    .await;
    drop(first); // the reply will find the port closed
    gate.open();
    // The ICMP error wakes the receive loop (POLLERR), which counts it and reads on; waiting
    // for it here also keeps the peer's port closed until the error has come back.
    eventually::<R>("the refusal counted", LIMIT, || {
        counter(&tree, "receive_errors") == 1
    })
    .await;
    eventually::<R>("the reply counted", LIMIT, || {
        counter(&tree, "replies_sent") == 1
    })
    .await;
    let second = UdpSocket::<R>::bind(peer)
        .await
        .expect("rebind the peer's port");
    second.send_to(b"after", addr).await.expect("send");
    assert_eq!(receive::<R>(&second).await, (b"after".to_vec(), addr));
    assert_eq!(
        counter(&tree, "receive_errors"),
        1,
        "the refusal was counted"
    );
    assert_eq!(tree.state(), State::Ready, "the server keeps serving");
    assert!(tree.stop().await.is_clean());
}

/// With `reuse_port`, two servers bind the same UDP port and both start (the kernel spreads
/// datagrams over them; each is answered); without it the second fails naming the address.
/// The buffer sizes reach the socket (Linux doubles what it is given).
pub async fn datagram_socket_options_are_applied<R: Runtime>() {
    let shared = DatagramOptions {
        reuse_port: true,
        ..DatagramOptions::default()
    };
    let first = DatagramServer::<R, _>::new("first", "127.0.0.1:0", echo::<R>)
        .socket_options(shared.clone());
    let address = first.address();
    let first = tree::<R>(first);
    first.start().await.expect("the first server starts");
    let addr = address.local_addr().expect("bound");
    let second =
        tree::<R>(DatagramServer::<R, _>::new("second", addr, echo::<R>).socket_options(shared));
    second
        .start()
        .await
        .expect("a second server shares the port");
    let client = client::<R>().await;
    for round in 0..5u8 {
        client.send_to(&[round], addr).await.expect("send");
        assert_eq!(receive(&client).await, (vec![round], addr));
    }
    let received = counter(&first, "datagrams_received") + counter(&second, "datagrams_received");
    assert_eq!(received, 5);
    let alone = tree::<R>(DatagramServer::<R, _>::new("alone", addr, echo::<R>));
    let failure = alone.start().await.expect_err("the port is taken");
    assert!(failure.to_string().contains(&addr.to_string()), "{failure}");
    first.stop().await;
    second.stop().await;

    let sized = DatagramOptions {
        recv_buffer_size: Some(256 * 1024),
        send_buffer_size: Some(128 * 1024),
        ..DatagramOptions::default()
    };
    let socket = DatagramBind::from("127.0.0.1:0")
        .open::<R>(&sized)
        .await
        .expect("open");
    let fd = socket2::SockRef::from(&socket);
    // Capped at net.core.rmem_max / wmem_max, which may be lower than asked on a small host.
    let (rmem_max, wmem_max) = (sysctl("net/core/rmem_max"), sysctl("net/core/wmem_max"));
    let recv = fd.recv_buffer_size().expect("SO_RCVBUF");
    let send = fd.send_buffer_size().expect("SO_SNDBUF");
    assert!(recv >= 2 * (256 * 1024).min(rmem_max), "SO_RCVBUF {recv}");
    assert!(send >= 2 * (128 * 1024).min(wmem_max), "SO_SNDBUF {send}");

    let v6 = DatagramOptions {
        only_v6: Some(true),
        ..DatagramOptions::default()
    };
    match DatagramBind::from("[::1]:0").open::<R>(&v6).await {
        Ok(socket) => {
            let fd = socket2::SockRef::from(&socket);
            assert!(fd.only_v6().expect("IPV6_V6ONLY"), "IPV6_V6ONLY not set");
        }
        // A host without IPv6 (some containers): nothing to check there.
        Err(err) if err.kind() == io::ErrorKind::AddrNotAvailable => {}
        Err(err) => panic!("bind [::1]:0: {err}"),
    }
}

/// A `/proc/sys` value, in bytes.
fn sysctl(name: &str) -> usize {
    std::fs::read_to_string(format!("/proc/sys/{name}"))
        .unwrap_or_else(|err| panic!("/proc/sys/{name}: {err}"))
        .trim()
        .parse()
        .unwrap_or_else(|err| panic!("/proc/sys/{name}: {err}"))
}
