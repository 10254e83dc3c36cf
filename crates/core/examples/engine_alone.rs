//! The engine with no JS: one mount, proxied (`UPSTREAM=host:port`) or a
//! directory (`WWW=dir`), on 127.0.0.1:`PORT`, with the addon's allocator.
//! `ACCESS_LOG=1` builds the request log's records, which a thread standing in
//! for the JS one takes in batches when woken, as the addon's does.
//! For counting the instructions a request costs the engine alone (see
//! bench/instructions.sh), which no other load on the machine can change.

use skitai_core::bridge::Bridge;
use skitai_core::config::{AccessLogConfig, Config, Listen, Mount, MountTarget, UpstreamConfig};
use skitai_core::server::Engine;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let mut config = Config {
        listen: Listen::Address {
            host: "127.0.0.1".into(),
            port,
            backlog: 511,
        },
        ..Config::default()
    };
    let target = if let Ok(upstream) = std::env::var("UPSTREAM") {
        config.upstreams = vec![UpstreamConfig::new("@bench", false, vec![upstream])];
        MountTarget::Proxy {
            upstream: 0,
            path: String::new(),
        }
    } else if let Ok(www) = std::env::var("WWW") {
        MountTarget::Static(vec![www.into()])
    } else {
        eprintln!("engine_alone: set UPSTREAM=host:port or WWW=dir");
        std::process::exit(2);
    };
    config.mounts = vec![Mount {
        prefix: "/".into(),
        target,
    }];
    let bridge = Bridge::new(config.max_pending);
    if std::env::var_os("ACCESS_LOG").is_some() {
        config.access_log = Some(AccessLogConfig {
            off: Vec::new(),
            worker: "W0".into(),
        });
        let (wake, woken) = std::sync::mpsc::channel::<()>();
        bridge.set_waker(Some(Box::new(move || {
            let _ = wake.send(());
        })));
        let js = bridge.clone();
        std::thread::spawn(move || {
            while woken.recv().is_ok() {
                drop(js.take());
            }
        });
    }
    let engine = match Engine::start(config, bridge) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("engine_alone: {e}");
            std::process::exit(1);
        }
    };
    println!("ready {}", engine.local_addr().port());
    loop {
        std::thread::park();
    }
}
