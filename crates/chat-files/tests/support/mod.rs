//! An S3 server in the test process, for the S3 blob store's tests.

use std::net::SocketAddr;
use std::path::Path;

use chat_files::{S3BlobStore, S3Config};

/// An S3 server in this process, serving `root` (one directory per bucket) until the test ends.
pub fn s3_server(root: &Path) -> SocketAddr {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder as ConnBuilder;

    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(
        "test-key",
        "test-secret",
    ));
    let service = builder.build().into_shared();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(conn);
            }
        })
    });
    addr
}

pub fn s3_store(addr: SocketAddr, prefix: Option<&str>) -> S3BlobStore {
    S3BlobStore::new(&S3Config {
        endpoint: Some(format!("http://{addr}")),
        bucket: "blobs".into(),
        region: "us-east-1".into(),
        access_key_id: "test-key".into(),
        secret_access_key: "test-secret".into(),
        allow_http: true,
        prefix: prefix.map(str::to_owned),
    })
    .unwrap()
}
