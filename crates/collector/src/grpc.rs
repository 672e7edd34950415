//! The sample gRPC service `demo.Demo`, served by tonic without generated code (so building
//! it needs no `protoc`): one hand-written prost message and a hand-written service that
//! routes by path the way tonic's generated servers do.
//!
//! | method | kind | answer |
//! | --- | --- | --- |
//! | `/demo.Demo/Echo` | unary | the request message, then `grpc-status: 0` in the trailers |
//! | `/demo.Demo/Fail` | unary | the request message, then `grpc-status: 9` (FAILED_PRECONDITION) and `grpc-message: quota exceeded` in the trailers: an error after a message |
//! | `/demo.Demo/Count` | server streaming | `n` messages (`text` "1".."n", `n` 1..n) a few ms apart, then `grpc-status: 0` in the trailers |
//!
//! Any other path gets a trailers-only `grpc-status: 12` (UNIMPLEMENTED).

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body;
use tonic::server::{Grpc, NamedService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// The service's full name, as in its method paths.
pub const SERVICE: &str = "demo.Demo";
pub const ECHO: &str = "/demo.Demo/Echo";
pub const FAIL: &str = "/demo.Demo/Fail";
pub const COUNT: &str = "/demo.Demo/Count";

/// What `Fail` answers after its one message.
pub const FAIL_MESSAGE: &str = "quota exceeded";

/// The most messages `Count` sends, whatever `n` asks for.
pub const MAX_COUNT: i32 = 1000;

/// The pause between two of `Count`'s messages, so they leave as separate HTTP/2 frames.
const COUNT_PAUSE: Duration = Duration::from_millis(5);

/// Every request and response: `message DemoMessage { string text = 1; int32 n = 2; }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DemoMessage {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(int32, tag = "2")]
    pub n: i32,
}

/// The `demo.Demo` service, ready for `tonic::transport::Server`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Demo;

impl NamedService for Demo {
    const NAME: &'static str = SERVICE;
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

impl<B> tower_service::Service<http::Request<B>> for Demo
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        Box::pin(async move {
            let mut grpc = Grpc::new(ProstCodec::<DemoMessage, DemoMessage>::default());
            Ok(match path.as_str() {
                ECHO => grpc.unary(Echo, request).await,
                // Unary on the wire; served as a stream so an error can follow a message.
                FAIL => grpc.server_streaming(Fail, request).await,
                COUNT => grpc.server_streaming(Count, request).await,
                _ => Status::unimplemented(format!("no method {path}")).into_http(),
            })
        })
    }
}

type Answer<T> = std::future::Ready<Result<Response<T>, Status>>;
type Messages = ReceiverStream<Result<DemoMessage, Status>>;

struct Echo;

impl tower_service::Service<Request<DemoMessage>> for Echo {
    type Response = Response<DemoMessage>;
    type Error = Status;
    type Future = Answer<DemoMessage>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<DemoMessage>) -> Self::Future {
        std::future::ready(Ok(Response::new(request.into_inner())))
    }
}

struct Fail;

impl tower_service::Service<Request<DemoMessage>> for Fail {
    type Response = Response<Messages>;
    type Error = Status;
    type Future = Answer<Messages>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<DemoMessage>) -> Self::Future {
        let (tx, rx) = mpsc::channel(2);
        // Capacity 2: both items fit, so sending cannot fail or wait.
        let _ = tx.try_send(Ok(request.into_inner()));
        let _ = tx.try_send(Err(Status::failed_precondition(FAIL_MESSAGE)));
        std::future::ready(Ok(Response::new(ReceiverStream::new(rx))))
    }
}

struct Count;

impl tower_service::Service<Request<DemoMessage>> for Count {
    type Response = Response<Messages>;
    type Error = Status;
    type Future = Answer<Messages>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<DemoMessage>) -> Self::Future {
        let n = request.into_inner().n.clamp(0, MAX_COUNT);
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            for i in 1..=n {
                if i > 1 {
                    tokio::time::sleep(COUNT_PAUSE).await;
                }
                let message = DemoMessage {
                    text: i.to_string(),
                    n: i,
                };
                // The client went away: nothing left to send to.
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
        });
        std::future::ready(Ok(Response::new(ReceiverStream::new(rx))))
    }
}
