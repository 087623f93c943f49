//! threads: `std::thread` and blocking `std::net`, one thread per task as the backend does.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::runtime::{ECHO_CONNS, ECHO_LEN, ECHO_ROUND_TRIPS};

pub(crate) fn spawn_join(tasks: usize) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks).map(|i| thread::spawn(move || i)).collect();
    let mut sum = 0;
    for handle in handles {
        sum += handle.join().expect("thread panicked");
    }
    black_box(sum);
    start.elapsed()
}

pub(crate) fn echo() -> Duration {
    let run = || -> io::Result<Duration> {
        let start = Instant::now();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = thread::spawn(move || {
            let mut handlers = Vec::with_capacity(ECHO_CONNS);
            for _ in 0..ECHO_CONNS {
                let (stream, _) = listener.accept()?;
                handlers.push(thread::spawn(move || serve(stream)));
            }
            for handler in handlers {
                handler.join().expect("server thread panicked")?;
            }
            io::Result::Ok(())
        });
        let clients: Vec<_> = (0..ECHO_CONNS)
            .map(|_| thread::spawn(move || client(addr)))
            .collect();
        for client in clients {
            client.join().expect("client thread panicked")?;
        }
        server.join().expect("accept thread panicked")?;
        Ok(start.elapsed())
    };
    run().expect("echo benchmark failed")
}

fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = [0; ECHO_LEN];
    loop {
        match stream.read_exact(&mut buf) {
            Ok(()) => stream.write_all(&buf)?,
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(err) => return Err(err),
        }
    }
}

fn client(addr: SocketAddr) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let message = [7; ECHO_LEN];
    let mut buf = [0; ECHO_LEN];
    for _ in 0..ECHO_ROUND_TRIPS {
        stream.write_all(&message)?;
        stream.read_exact(&mut buf)?;
    }
    assert_eq!(buf, message, "echo mismatch");
    Ok(())
}
