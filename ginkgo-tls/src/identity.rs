//! [`PeerIdentity`]: who is at the other end of a connection, read from its certificate.

use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The certificate chain a peer presented, verified by the handshake, with its names read
/// out.
///
/// A server sees one only under mutual TLS (when [`ServerTls::client_ca`] is set): the client
/// certificate was then signed by that CA, so its names can be trusted as much as the CA.
/// A client always sees the server's.
///
/// Cloning is cheap (an `Arc` inside); the names are parsed once, at the handshake.
///
/// [`ServerTls::client_ca`]: crate::ServerTls::client_ca
#[derive(Clone)]
pub struct PeerIdentity(Arc<Parsed>);

struct Parsed {
    chain: Vec<CertificateDer<'static>>,
    subject: String,
    common_name: Option<String>,
    dns_names: Vec<String>,
}

impl PeerIdentity {
    /// The identity in a chain rustls verified; `None` for an empty chain.
    pub(crate) fn from_chain(chain: &[CertificateDer<'_>]) -> Option<Self> {
        let leaf = chain.first()?;
        // rustls has parsed and verified the leaf already, so x509-parser failing on it is
        // not expected; the chain is still kept then, only the names are empty.
        let (subject, common_name, dns_names) = match x509_parser::parse_x509_certificate(leaf) {
            Ok((_, cert)) => {
                let common_name = cert
                    .subject()
                    .iter_common_name()
                    .last()
                    .and_then(|cn| cn.as_str().ok())
                    .map(str::to_owned);
                let dns_names = match cert.subject_alternative_name() {
                    Ok(Some(san)) => san
                        .value
                        .general_names
                        .iter()
                        .filter_map(|name| match name {
                            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                            _ => None,
                        })
                        .collect(),
                    Ok(None) | Err(_) => Vec::new(),
                };
                (rfc4514(cert.subject()), common_name, dns_names)
            }
            Err(_) => (String::new(), None, Vec::new()),
        };
        Some(Self(Arc::new(Parsed {
            chain: chain.iter().map(|cert| cert.clone().into_owned()).collect(),
            subject,
            common_name,
            dns_names,
        })))
    }

    /// The peer's own (leaf) certificate, DER.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        // `from_chain` refuses an empty chain.
        &self.0.chain[0]
    }

    /// The whole chain the peer sent, DER, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.0.chain
    }

    /// The leaf's subject as an RFC 4514 string, most specific part first:
    /// `"CN=client-1,O=Example"`. Attribute types outside RFC 4514's table are written as
    /// dotted OIDs, values that are not strings as `#` and their bytes in hex.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }

    /// The leaf subject's common name (`CN`), the most specific one if there are several.
    pub fn common_name(&self) -> Option<&str> {
        self.0.common_name.as_deref()
    }

    /// The DNS names of the leaf's subjectAltName extension, in certificate order.
    pub fn dns_names(&self) -> &[String] {
        &self.0.dns_names
    }
}

impl fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerIdentity")
            .field("subject", &self.0.subject)
            .field("dns_names", &self.0.dns_names)
            .field("chain_len", &self.0.chain.len())
            .finish()
    }
}

/// RFC 4514: the RDNs in reverse of their encoded order, `,` between them, `+` between the
/// attributes of one RDN.
fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn attribute(attr: &AttributeTypeAndValue<'_>) -> String {
    let oid = attr.attr_type().to_id_string();
    // RFC 4514 section 3's table.
    let short = match oid.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        other => other,
    };
    let mut out = format!("{short}=");
    match attr.as_str() {
        Ok(value) => escape(value, &mut out),
        Err(_) => {
            out.push('#');
            for byte in attr.as_slice() {
                let _ = write!(out, "{byte:02x}");
            }
        }
    }
    out
}

/// RFC 4514 section 2.4's escaping of a string value.
fn escape(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(value: &str) -> String {
        let mut out = String::new();
        escape(value, &mut out);
        out
    }

    #[test]
    fn escapes_as_rfc4514_says() {
        assert_eq!(escaped("client-1"), "client-1");
        assert_eq!(escaped("Example, Inc."), "Example\\, Inc.");
        assert_eq!(escaped("a+b=c"), "a\\+b=c");
        assert_eq!(escaped(" padded "), "\\ padded\\ ");
        assert_eq!(escaped("#1"), "\\#1");
        assert_eq!(escaped("in#side"), "in#side");
        assert_eq!(escaped("x\0y"), "x\\00y");
    }
}
