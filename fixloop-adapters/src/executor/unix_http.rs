//! One HTTP/1.1 exchange over a Unix socket (the Docker Engine API's transport), with hyper's client connection:
//! connect, send one request, read a bounded body, close. No pooling: an action is rare and the daemon is local.

use std::path::Path;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::header::{HOST, HeaderMap};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use crate::error::AdapterError;

/// What came back.
pub(crate) struct Exchange {
    /// The response status.
    pub(crate) status: StatusCode,
    /// The response headers.
    pub(crate) headers: HeaderMap,
    /// The body, at most the limit given to [`exchange`].
    pub(crate) body: Bytes,
}

/// Sends `method path` (no body) to the HTTP server on `socket` and reads its answer, the body bounded by
/// `body_limit` bytes. The caller bounds the time.
///
/// # Errors
///
/// [`Unauthorized`](crate::ErrorKind::Unauthorized) when the socket's permissions refuse us,
/// [`Unavailable`](crate::ErrorKind::Unavailable) when nothing listens or the connection fails,
/// [`InvalidResponse`](crate::ErrorKind::InvalidResponse) when the answer is not HTTP or its body is too long.
pub(crate) async fn exchange(
    socket: &Path,
    method: Method,
    path_and_query: &str,
    body_limit: usize,
) -> Result<Exchange, AdapterError> {
    let stream = UnixStream::connect(socket).await.map_err(|error| {
        if error.kind() == std::io::ErrorKind::PermissionDenied {
            AdapterError::unauthorized(format!(
                "permission denied on the socket {}",
                socket.display()
            ))
            .with_source(error)
        } else {
            AdapterError::unavailable(format!(
                "could not connect to the socket {}",
                socket.display()
            ))
            .with_source(error)
        }
    })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| AdapterError::unavailable("http handshake failed").with_source(error))?;
    let request = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(HOST, "localhost")
        .body(Empty::<Bytes>::new())
        .map_err(|error| AdapterError::refused("could not build the request").with_source(error))?;
    // The connection is driven here, beside the request, so no task outlives the call.
    let mut connection = std::pin::pin!(connection);
    let response = tokio::select! {
        biased;
        response = sender.send_request(request) => response
            .map_err(|error| AdapterError::unavailable("the request failed").with_source(error))?,
        ended = &mut connection => {
            let error = match ended {
                Ok(()) => AdapterError::unavailable("the connection closed before an answer"),
                Err(error) => AdapterError::unavailable("the connection failed").with_source(error),
            };
            return Err(error);
        }
    };
    let (parts, body) = response.into_parts();
    let collect = Limited::new(body, body_limit).collect();
    let mut collect = std::pin::pin!(collect);
    let collected = tokio::select! {
        biased;
        collected = &mut collect => collected,
        ended = &mut connection => {
            ended.map_err(|error| AdapterError::unavailable("the connection failed").with_source(error))?;
            collect.await
        }
    };
    let body = collected
        .map_err(|error| {
            AdapterError::invalid_response(format!(
                "the answer's body could not be read within {body_limit} bytes: {error}"
            ))
        })?
        .to_bytes();
    Ok(Exchange {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
