//! Protocol switches through the proxy (WebSocket): once both sides agreed
//! (`101`), the client's socket and the member's are joined and bytes copied
//! both ways until either side closes.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::balancer::InFlight;

/// Join the two sockets once hyper hands them over: the client's after the
/// `101` went out, the member's once it came in. The member counts the tunnel as
/// a connection until it ends.
pub fn tunnel(client: OnUpgrade, member: OnUpgrade, in_flight: InFlight) {
    tokio::spawn(async move {
        let (Ok(client), Ok(member)) = tokio::join!(client, member) else {
            return;
        };
        let mut client = TokioIo::new(client);
        let mut member = TokioIo::new(member);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut member).await;
        drop(in_flight);
    });
}
