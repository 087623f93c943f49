//! Networking: TCP, UDP and Unix sockets on loopback.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::time::Duration;

use futures_lite::future;
use ginkgo_api::io::{AsyncReadExt, AsyncWriteExt};
use ginkgo_api::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use ginkgo_api::sync::Semaphore;
use ginkgo_api::time::timeout;
use ginkgo_api::{Runtime, spawn};

use crate::support::socket_path;

const LOCALHOST: (Ipv4Addr, u16) = (Ipv4Addr::LOCALHOST, 0);
const LIMIT: Duration = Duration::from_secs(60);

/// A byte pattern that shows misordered or missing data.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A TCP connection on loopback: `(client, server)`.
async fn tcp_pair<R: Runtime>() -> (TcpStream<R>, TcpStream<R>) {
    let listener = TcpListener::<R>::bind(LOCALHOST).await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let client = TcpStream::<R>::connect(addr).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    (client, server)
}

/// 1 MiB sent and echoed back through owned halves on both sides, each half in its own task.
pub async fn tcp_echo_1mib_split<R: Runtime>() {
    let listener = TcpListener::<R>::bind(LOCALHOST).await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = spawn::<R, _>(async move {
        let (stream, _) = listener.accept().await?;
        let (mut read, mut write) = stream.into_split();
        let copied = ginkgo_api::io::copy(&mut read, &mut write).await?;
        write.close().await?;
        std::io::Result::Ok(copied)
    });

    let data = pattern(1 << 20);
    let (mut read, mut write) = TcpStream::<R>::connect(addr)
        .await
        .expect("connect")
        .into_split();
    let sent = data.clone();
    let writer = spawn::<R, _>(async move {
        write.write_all(&sent).await?;
        drop(write); // dropping the write half sends end-of-file
        std::io::Result::Ok(())
    });
    let mut echoed = Vec::with_capacity(data.len());
    timeout::<R, _>(LIMIT, read.read_to_end(&mut echoed))
        .await
        .expect("echo finished in time")
        .expect("read echo");
    writer.await.expect("writer task").expect("write");
    assert_eq!(
        server.await.expect("server task").expect("server io"),
        1 << 20
    );
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echoed bytes differ from the sent ones");
}

/// A thousand connections open at the same time, each echoing its own message.
pub async fn tcp_1000_connections<R: Runtime>() {
    const CONNECTIONS: usize = 1000;
    let listener = TcpListener::<R>::bind(LOCALHOST).await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = spawn::<R, _>(async move {
        let mut handlers = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let (mut stream, _) = listener.accept().await?;
            handlers.push(spawn::<R, _>(async move {
                let mut buf = [0u8; 8];
                stream.read_exact(&mut buf).await?;
                stream.write_all(&buf).await?;
                std::io::Result::Ok(())
            }));
        }
        for handler in handlers {
            handler.await.expect("handler task")?;
        }
        std::io::Result::Ok(())
    });

    // Connect in waves small enough for any listen backlog, but keep every connection open
    // until all of them are established: then all 1,000 are open at once.
    let connecting = std::sync::Arc::new(Semaphore::new(64));
    let all_open = std::sync::Arc::new(ginkgo_api::sync::Barrier::new(CONNECTIONS));
    let clients: Vec<_> = (0..CONNECTIONS as u64)
        .map(|i| {
            let connecting = connecting.clone();
            let all_open = all_open.clone();
            spawn::<R, _>(async move {
                let permit = connecting.acquire().await;
                let mut stream = TcpStream::<R>::connect(addr).await?;
                drop(permit);
                all_open.wait().await;
                stream.write_all(&i.to_be_bytes()).await?;
                let mut buf = [0u8; 8];
                stream.read_exact(&mut buf).await?;
                assert_eq!(
                    u64::from_be_bytes(buf),
                    i,
                    "connection {i} got another's echo"
                );
                std::io::Result::Ok(())
            })
        })
        .collect();
    timeout::<R, _>(LIMIT, async {
        for client in clients {
            client.await.expect("client task").expect("client io");
        }
    })
    .await
    .expect("all clients finished in time");
    server.await.expect("server task").expect("server io");
}

/// A timeout cancels a pending accept; the listener keeps working and loses no connection.
pub async fn accept_cancelled_by_timeout<R: Runtime>() {
    let listener = TcpListener::<R>::bind(LOCALHOST).await.expect("bind");
    let result = timeout::<R, _>(Duration::from_millis(20), listener.accept()).await;
    assert!(result.is_err(), "nobody connected, so accept must time out");

    let addr = listener.local_addr().expect("local addr");
    let client = TcpStream::<R>::connect(addr).await.expect("connect");
    let (server_side, peer) = timeout::<R, _>(LIMIT, listener.accept())
        .await
        .expect("accept after a cancelled accept")
        .expect("accept");
    assert_eq!(peer, client.local_addr().expect("client addr"));
    drop(server_side);
}

/// Connecting to a port nobody listens on is an error that names the address.
pub async fn connect_closed_port_errors<R: Runtime>() {
    let addr = {
        let listener = std::net::TcpListener::bind(LOCALHOST).expect("bind");
        listener.local_addr().expect("local addr")
    }; // closed here
    let err = timeout::<R, _>(LIMIT, TcpStream::<R>::connect(addr))
        .await
        .expect("refusal is immediate on loopback")
        .expect_err("nothing listens there");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert!(
        err.to_string().contains(&addr.to_string()),
        "message {err} names {addr}"
    );
}

/// Local and peer addresses agree from both ends; `TCP_NODELAY` can be set and read back.
pub async fn tcp_addresses_and_nodelay<R: Runtime>() {
    let listener = TcpListener::<R>::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (client, (server, peer)) = future::zip(
        async { TcpStream::<R>::connect(addr).await.expect("connect") },
        async { listener.accept().await.expect("accept") },
    )
    .await;
    assert_eq!(client.peer_addr().expect("peer"), addr);
    assert_eq!(server.local_addr().expect("local"), addr);
    assert_eq!(server.peer_addr().expect("peer"), peer);
    assert_eq!(client.local_addr().expect("local"), peer);
    for on in [true, false, true] {
        client.set_nodelay(on).expect("set nodelay");
        assert_eq!(client.nodelay().expect("nodelay"), on);
    }
}

/// Shutting down the write direction makes the peer read end-of-file, while the other
/// direction keeps working.
pub async fn tcp_shutdown_write_gives_eof<R: Runtime>() {
    let (mut client, mut server) = tcp_pair::<R>().await;
    client.write_all(b"last words").await.expect("write");
    client.shutdown(Shutdown::Write).expect("shutdown");
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.expect("read to eof");
    assert_eq!(got, b"last words");
    server.write_all(b"reply").await.expect("reply");
    let mut reply = [0u8; 5];
    client.read_exact(&mut reply).await.expect("read reply");
    assert_eq!(&reply, b"reply");
}

/// Closing a stream (`AsyncWriteExt::close`) shuts down its write direction, as the contract
/// says: the peer reads to the end while the stream, still open, reads the reply. TCP, a
/// write half, and a Unix-domain pair.
pub async fn close_shuts_down_the_write_direction<R: Runtime>() {
    let (mut client, mut server) = tcp_pair::<R>().await;
    write_and_close::<R>(&mut client, &mut server, b"last words", "TCP stream").await;
    server.write_all(b"reply").await.expect("reply");
    let mut reply = [0u8; 5];
    client.read_exact(&mut reply).await.expect("read reply");
    assert_eq!(&reply, b"reply");

    let (client, mut server) = tcp_pair::<R>().await;
    let (_read, mut write) = client.into_split();
    write_and_close::<R>(&mut write, &mut server, b"half", "TCP write half").await;
    drop(write);

    let (mut a, mut b) = UnixStream::<R>::pair().expect("pair");
    write_and_close::<R>(&mut a, &mut b, b"unix", "Unix stream").await;
}

/// Writes `data` to `stream` and closes it (keeping it), then checks that `peer` reads exactly
/// `data` and the end of the stream.
async fn write_and_close<R: Runtime>(
    stream: &mut (impl futures_lite::AsyncWrite + Unpin),
    peer: &mut (impl futures_lite::AsyncRead + Unpin),
    data: &[u8],
    what: &str,
) {
    stream.write_all(data).await.expect("write");
    stream.close().await.expect("close");
    let mut got = Vec::new();
    timeout::<R, _>(LIMIT, peer.read_to_end(&mut got))
        .await
        .unwrap_or_else(|_| panic!("the peer never saw the end of the {what}"))
        .expect("read to eof");
    assert_eq!(got, data, "what the peer of the {what} read");
}

/// A listener bound with `std` (as socket activation hands it over) is adopted and serves.
pub async fn listener_from_std<R: Runtime>() {
    let std_listener = std::net::TcpListener::bind(LOCALHOST).expect("std bind");
    let addr = std_listener.local_addr().expect("local addr");
    let listener = TcpListener::<R>::from_std(std_listener).expect("from_std");
    assert_eq!(listener.local_addr().expect("local addr"), addr);
    let accept = spawn::<R, _>(async move { listener.accept().await.map(|(_, peer)| peer) });
    let client = TcpStream::<R>::connect(addr).await.expect("connect");
    let peer = timeout::<R, _>(LIMIT, accept)
        .await
        .expect("accepted in time")
        .expect("accept task")
        .expect("accept");
    assert_eq!(peer, client.local_addr().expect("client addr"));
}

/// Binding an address in use fails with `AddrInUse` and names the address.
pub async fn bind_in_use_errors<R: Runtime>() {
    let first = TcpListener::<R>::bind(LOCALHOST).await.expect("bind");
    let addr = first.local_addr().expect("local addr");
    let err = TcpListener::<R>::bind(addr)
        .await
        .expect_err("address in use");
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert!(
        err.to_string().contains(&addr.to_string()),
        "message {err} names {addr}"
    );
}

/// A host name resolves (off the executor) and each address is tried in turn: `localhost` may
/// resolve to `::1` first, where nothing listens, before `127.0.0.1`.
pub async fn connect_by_host_name<R: Runtime>() {
    let listener = TcpListener::<R>::bind(LOCALHOST).await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let client = TcpStream::<R>::connect(format!("localhost:{port}"))
        .await
        .expect("connect to localhost");
    assert_eq!(client.peer_addr().expect("peer").port(), port);
    let err = TcpStream::<R>::connect("host.invalid:80")
        .await
        .expect_err("the .invalid domain never resolves");
    assert!(
        err.to_string().contains("host.invalid"),
        "message {err} names the host"
    );
}

/// Datagrams travel both ways with the right sender addresses.
pub async fn udp_round_trip<R: Runtime>() {
    let a = UdpSocket::<R>::bind(LOCALHOST).await.expect("bind a");
    let b = UdpSocket::<R>::bind(LOCALHOST).await.expect("bind b");
    let (a_addr, b_addr) = (a.local_addr().expect("a"), b.local_addr().expect("b"));
    assert_eq!(a.send_to(b"ping", b_addr).await.expect("send"), 4);
    let mut buf = [0u8; 64];
    let (n, from) = timeout::<R, _>(LIMIT, b.recv_from(&mut buf))
        .await
        .expect("datagram in time")
        .expect("recv");
    assert_eq!((&buf[..n], from), (&b"ping"[..], a_addr));
    b.send_to(b"pong", from).await.expect("reply");
    let (n, from) = a.recv_from(&mut buf).await.expect("recv reply");
    assert_eq!((&buf[..n], from), (&b"pong"[..], b_addr));
}

/// A connected UDP socket sends and receives without addresses and knows its peer.
pub async fn udp_connected<R: Runtime>() {
    let a = UdpSocket::<R>::bind(LOCALHOST).await.expect("bind a");
    let b = UdpSocket::<R>::bind(LOCALHOST).await.expect("bind b");
    let b_addr: SocketAddr = b.local_addr().expect("b");
    assert!(a.peer_addr().is_err(), "not connected yet");
    a.connect(b_addr).await.expect("connect");
    assert_eq!(a.peer_addr().expect("peer"), b_addr);
    b.connect(a.local_addr().expect("a"))
        .await
        .expect("connect back");
    a.send(b"hello").await.expect("send");
    let mut buf = [0u8; 16];
    let n = timeout::<R, _>(LIMIT, b.recv(&mut buf))
        .await
        .expect("in time")
        .expect("recv");
    assert_eq!(&buf[..n], b"hello");
}

/// A Unix-domain socket file carries data both ways.
pub async fn unix_round_trip<R: Runtime>() {
    let (_dir, path) = socket_path("round-trip");
    let listener = UnixListener::<R>::bind(&path).expect("bind");
    assert_eq!(
        listener.local_addr().expect("addr").as_pathname(),
        Some(path.as_path())
    );
    let server = spawn::<R, _>(async move {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).await?;
        buf.reverse();
        stream.write_all(&buf).await?;
        std::io::Result::Ok(())
    });
    let mut client = UnixStream::<R>::connect(&path).await.expect("connect");
    client.write_all(b"hello").await.expect("write");
    let mut buf = [0u8; 5];
    client.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"olleh");
    server.await.expect("server task").expect("server io");
}

/// A connected pair works, and a listener bound with `std` is adopted.
pub async fn unix_pair_and_from_std<R: Runtime>() {
    let (mut a, mut b) = UnixStream::<R>::pair().expect("pair");
    a.write_all(b"x").await.expect("write");
    a.shutdown(Shutdown::Write).expect("shutdown");
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.expect("read");
    assert_eq!(got, b"x");

    let (_dir, path) = socket_path("from-std");
    let std_listener = std::os::unix::net::UnixListener::bind(&path).expect("std bind");
    let listener = UnixListener::<R>::from_std(std_listener).expect("from_std");
    let accept = spawn::<R, _>(async move { listener.accept().await.map(drop) });
    let _client = UnixStream::<R>::connect(&path).await.expect("connect");
    timeout::<R, _>(LIMIT, accept)
        .await
        .expect("in time")
        .expect("accept task")
        .expect("accept");
}

/// Binding over an existing file fails with `AddrInUse` and names the path; connecting to a
/// missing socket names it too.
pub async fn unix_bind_existing_path_errors<R: Runtime>() {
    let (_dir, path) = socket_path("existing");
    std::fs::write(&path, b"not a socket").expect("create file");
    let err = UnixListener::<R>::bind(&path).expect_err("the path exists");
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&path.display().to_string()));
    std::fs::remove_file(&path).expect("remove file");
    let err = UnixStream::<R>::connect(&path)
        .await
        .expect_err("nothing listens");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains(&path.display().to_string()));
}

/// A vectored write sends every slice in one call (hyper relies on it to send a response's
/// head and body together).
pub async fn vectored_write_sends_all_slices<R: Runtime>() {
    let (mut client, mut server) = tcp_pair::<R>().await;
    let slices = [
        std::io::IoSlice::new(b"head "),
        std::io::IoSlice::new(b"body"),
    ];
    let written = client.write_vectored(&slices).await.expect("writev");
    assert_eq!(written, 9, "both slices in one write");
    let (_, mut write) = client.into_split();
    let written = write
        .write_vectored(&slices)
        .await
        .expect("writev on a half");
    assert_eq!(written, 9);
    let mut got = [0u8; 18];
    server.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"head bodyhead body");
}

/// A read timed out while the peer is silent loses nothing: afterwards the connection still
/// carries data both ways.
pub async fn read_cancelled_by_timeout<R: Runtime>() {
    let (mut client, mut server) = tcp_pair::<R>().await;
    let mut buf = [0u8; 5];
    let wanted = Duration::from_millis(20);
    let start = std::time::Instant::now();
    let result = timeout::<R, _>(wanted, client.read(&mut buf)).await;
    assert!(
        result.is_err(),
        "the peer sent nothing, so the read must time out"
    );
    assert!(start.elapsed() >= wanted, "timed out early");

    server.write_all(b"hello").await.expect("write");
    timeout::<R, _>(LIMIT, client.read_exact(&mut buf))
        .await
        .expect("read after a cancelled read, in time")
        .expect("read");
    assert_eq!(&buf, b"hello");
    client.write_all(b"world").await.expect("write back");
    timeout::<R, _>(LIMIT, server.read_exact(&mut buf))
        .await
        .expect("in time")
        .expect("read back");
    assert_eq!(&buf, b"world");
}

/// A task waiting on a silent socket is woken by a channel message sent from another task; the
/// socket keeps working afterwards.
pub async fn socket_wait_woken_by_channel<R: Runtime>() {
    let (mut client, mut server) = tcp_pair::<R>().await;
    let (tx, rx) = ginkgo_api::sync::channel::bounded::<u32>(1);
    let waiter = spawn::<R, _>(async move {
        let mut buf = [0u8; 4];
        let woken_by = future::or(
            async { Ok::<u32, std::io::Result<usize>>(rx.recv().await.expect("sender alive")) },
            async { Err(client.read(&mut buf).await) },
        )
        .await;
        assert_eq!(woken_by.expect("the socket stayed silent"), 7);
        client.read_exact(&mut buf).await?;
        std::io::Result::Ok(buf)
    });
    // Let the waiter settle into its wait before the message arrives.
    ginkgo_api::time::sleep::<R>(Duration::from_millis(20)).await;
    tx.send(7).await.expect("waiter alive");
    server.write_all(b"ping").await.expect("write");
    let got = timeout::<R, _>(LIMIT, waiter)
        .await
        .expect("woken in time")
        .expect("waiter task")
        .expect("read after the wake");
    assert_eq!(&got, b"ping");
}

/// A socket that one task waited on and gave up, then handed to another task that drops it, is
/// closed at once (the peer reads end-of-file) while the first task keeps waiting elsewhere.
pub async fn socket_dropped_by_another_task_closes<R: Runtime>() {
    let (client, mut server) = tcp_pair::<R>().await;
    let (hand_over, handed) = ginkgo_api::sync::channel::bounded::<TcpStream<R>>(1);
    let (finish, finished) = ginkgo_api::sync::channel::bounded::<()>(1);
    let first = spawn::<R, _>(async move {
        let mut client = client;
        let mut buf = [0u8; 1];
        let gave_up = timeout::<R, _>(Duration::from_millis(10), client.read(&mut buf)).await;
        assert!(gave_up.is_err(), "the peer sent nothing");
        hand_over.send(client).await.expect("second task alive");
        // Keep waiting on something else until the test ends.
        let _ = finished.recv().await;
    });
    let second = spawn::<R, _>(async move {
        drop(handed.recv().await.expect("a socket"));
    });
    second.await.expect("second task");
    let mut rest = Vec::new();
    // Far less than LIMIT: the socket must close now, not whenever the first task wakes up.
    timeout::<R, _>(Duration::from_secs(5), server.read_to_end(&mut rest))
        .await
        .expect("end-of-file at once")
        .expect("read to end-of-file");
    assert!(rest.is_empty());
    finish.send(()).await.expect("first task alive");
    first.await.expect("first task");
}

/// `UnixStream::peer_credentials` names the process at the other end (here, this one).
pub async fn unix_peer_credentials<R: Runtime>() {
    let (a, _b) = UnixStream::<R>::pair().expect("pair");
    let credentials = a.peer_credentials().expect("SO_PEERCRED");
    assert_eq!(credentials.pid, Some(std::process::id()));
    assert_eq!(credentials.uid, rustix::process::geteuid().as_raw());
    assert_eq!(credentials.gid, rustix::process::getegid().as_raw());
}

/// `UdpSocket::from_std` adopts a bound socket (socket activation, options of one's own) and
/// it works as one bound by the runtime; its descriptor is reachable for socket options.
pub async fn udp_from_std<R: Runtime>() {
    use std::os::fd::AsFd;
    let std_socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = std_socket.local_addr().expect("address");
    let adopted = UdpSocket::<R>::from_std(std_socket).expect("adopt");
    assert_eq!(adopted.local_addr().expect("address"), addr);
    let size = socket2::SockRef::from(&adopted.as_fd())
        .recv_buffer_size()
        .expect("SO_RCVBUF through the descriptor");
    assert!(size > 0);
    let sender = UdpSocket::<R>::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    sender.send_to(b"adopted", addr).await.expect("send");
    let mut buf = [0u8; 16];
    let (n, from) = timeout::<R, _>(Duration::from_secs(10), adopted.recv_from(&mut buf))
        .await
        .expect("a datagram in time")
        .expect("recv");
    assert_eq!(
        (&buf[..n], from),
        (&b"adopted"[..], sender.local_addr().expect("address"))
    );
}
