use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::runtime::Runtime;

/// Something that names one or more socket addresses: a [`SocketAddr`], an `(ip, port)` pair,
/// or a `"host:port"` string.
///
/// Literal addresses resolve without any I/O. Host names are looked up with the system resolver
/// on a blocking thread ([`crate::spawn_blocking`]), never on the async executor.
pub trait ToSocketAddrs: sealed::Sealed {}

mod sealed {
    /// What an address argument turns into before any I/O.
    pub enum Resolved {
        Ready(Vec<std::net::SocketAddr>),
        Lookup(String),
    }

    pub trait Sealed {
        fn resolved(&self) -> Resolved;
    }
}

use sealed::Resolved;

macro_rules! literal {
    ($($ty:ty => |$v:ident| $e:expr;)*) => {$(
        impl ToSocketAddrs for $ty {}
        impl sealed::Sealed for $ty {
            fn resolved(&self) -> Resolved {
                let $v = self;
                Resolved::Ready(vec![$e])
            }
        }
    )*};
}

literal! {
    SocketAddr => |a| *a;
    SocketAddrV4 => |a| SocketAddr::V4(*a);
    SocketAddrV6 => |a| SocketAddr::V6(*a);
    (IpAddr, u16) => |a| SocketAddr::new(a.0, a.1);
    (Ipv4Addr, u16) => |a| SocketAddr::new(IpAddr::V4(a.0), a.1);
    (Ipv6Addr, u16) => |a| SocketAddr::new(IpAddr::V6(a.0), a.1);
}

impl ToSocketAddrs for str {}
impl sealed::Sealed for str {
    fn resolved(&self) -> Resolved {
        match self.parse::<SocketAddr>() {
            Ok(addr) => Resolved::Ready(vec![addr]),
            Err(_) => Resolved::Lookup(self.to_owned()),
        }
    }
}

impl ToSocketAddrs for String {}
impl sealed::Sealed for String {
    fn resolved(&self) -> Resolved {
        self.as_str().resolved()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl sealed::Sealed for (&str, u16) {
    fn resolved(&self) -> Resolved {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Resolved::Ready(vec![SocketAddr::new(ip, self.1)]),
            Err(_) => Resolved::Lookup(format!("{}:{}", self.0, self.1)),
        }
    }
}

impl ToSocketAddrs for [SocketAddr] {}
impl sealed::Sealed for [SocketAddr] {
    fn resolved(&self) -> Resolved {
        Resolved::Ready(self.to_vec())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: ToSocketAddrs + ?Sized> sealed::Sealed for &T {
    fn resolved(&self) -> Resolved {
        (**self).resolved()
    }
}

/// Resolves `addrs` to socket addresses, looking host names up on a blocking thread of runtime
/// `R` (so a slow resolver never stalls the executor). For code that builds its own sockets
/// (with socket options, say) and needs the addresses first.
///
/// # Examples
///
/// ```
/// # fn demo<R: ginkgo_api::Runtime>() {
/// ginkgo_api::block_on::<R, _>(async {
///     let addrs = ginkgo_api::net::lookup::<R>("127.0.0.1:80").await.unwrap();
///     assert_eq!(addrs, ["127.0.0.1:80".parse().unwrap()]);
/// });
/// # }
/// ```
///
/// # Errors
///
/// Fails when a host name does not resolve, or resolves to nothing; the message names it.
/// Never returns an empty list.
pub async fn lookup<R: Runtime>(
    addrs: &(impl ToSocketAddrs + ?Sized),
) -> io::Result<Vec<SocketAddr>> {
    resolve::<R>(addrs).await
}

/// Resolves `addrs`, looking host names up on a blocking thread. Never returns an empty list.
pub(crate) async fn resolve<R: Runtime>(
    addrs: &(impl ToSocketAddrs + ?Sized),
) -> io::Result<Vec<SocketAddr>> {
    match sealed::Sealed::resolved(addrs) {
        Resolved::Ready(list) if list.is_empty() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no socket address given",
        )),
        Resolved::Ready(list) => Ok(list),
        Resolved::Lookup(host) => {
            let name = host.clone();
            let found = crate::task::spawn_blocking::<R, _, _>(move || {
                std::net::ToSocketAddrs::to_socket_addrs(&name).map(Iterator::collect::<Vec<_>>)
            })
            .await
            .map_err(io::Error::from)?
            .map_err(|err| super::context(err, "resolve", &host))?;
            if found.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("resolve {host}: no addresses found"),
                ));
            }
            Ok(found)
        }
    }
}

/// Tries `op` on each address in turn and returns the first success or the last error, with the
/// address named in the message.
pub(crate) async fn each_addr<R, T, Fut>(
    addrs: &(impl ToSocketAddrs + ?Sized),
    what: &str,
    mut op: impl FnMut(SocketAddr) -> Fut,
) -> io::Result<T>
where
    R: Runtime,
    Fut: Future<Output = io::Result<T>>,
{
    let list = resolve::<R>(addrs).await?;
    let mut last = None;
    for addr in list {
        match op(addr).await {
            Ok(value) => return Ok(value),
            Err(err) => last = Some(super::context(err, what, addr)),
        }
    }
    Err(last.expect("resolve never returns an empty list"))
}
