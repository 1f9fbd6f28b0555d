//! The standard gRPC health service and server reflection, so that generic tools (grpcurl,
//! grpc-health-probe, load balancers) work without the proto files. Neither needs a token.

use prost::Message;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

use crate::support::*;

const API_SERVICES: [&str; 6] = [
    "voucherledger.v1.AdministrationService",
    "voucherledger.v1.OperatorService",
    "voucherledger.v1.ProviderService",
    "voucherledger.v1.ReportService",
    "voucherledger.v1.AuditService",
    "voucherledger.v1.QueryService",
];

#[tokio::test]
async fn health_is_serving_for_the_server_and_each_service() {
    let server = Server::start().await;
    let mut health = HealthClient::new(server.channel());
    for service in std::iter::once("").chain(API_SERVICES) {
        let response = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap_or_else(|status| panic!("health of {service:?}: {status:?}"))
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "health of {service:?}"
        );
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "voucherledger.v1.NoSuchService".to_owned(),
        })
        .await
        .expect_err("an unknown service has no health");
    assert_eq!(unknown.code(), Code::NotFound);
}

/// One request on a reflection stream, and its answer.
async fn reflect(server: &Server, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(server.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("the reflection stream opens")
        .into_inner();
    let response: ServerReflectionResponse = responses
        .message()
        .await
        .expect("the reflection stream answers")
        .expect("one answer");
    response.message_response.expect("an answer has a response")
}

#[tokio::test]
async fn reflection_lists_the_six_services_and_health_and_describes_them() {
    let server = Server::start().await;
    let MessageResponse::ListServicesResponse(listed) =
        reflect(&server, MessageRequest::ListServices(String::new())).await
    else {
        panic!("list_services answers a service list");
    };
    let names: Vec<&str> = listed
        .service
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    for expected in API_SERVICES.into_iter().chain(["grpc.health.v1.Health"]) {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }

    // A generic client can learn the API from the server alone.
    let MessageResponse::FileDescriptorResponse(files) = reflect(
        &server,
        MessageRequest::FileContainingSymbol("voucherledger.v1.OperatorService".to_owned()),
    )
    .await
    else {
        panic!("file_containing_symbol answers file descriptors");
    };
    let methods: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| {
            prost_types::FileDescriptorProto::decode(bytes.as_slice())
                .expect("a file descriptor decodes")
        })
        .flat_map(|file| file.service)
        .filter(|service| service.name() == "OperatorService")
        .flat_map(|service| service.method)
        .map(|method| method.name().to_owned())
        .collect();
    assert_eq!(
        methods,
        [
            "RegisterCompany",
            "IssueVouchers",
            "IssueVouchersBatch",
            "ExpireVouchers",
            "RecordPayout",
            "GetWallet",
            "RegisterCompaniesBatch",
            "RecordPayoutsBatch"
        ]
    );
}

/// Python's grpcio-reflection and other older tools speak only `grpc.reflection.v1alpha`: the
/// server answers it too, with the same services and descriptors.
#[tokio::test]
async fn reflection_v1alpha_answers_for_older_clients() {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as V1AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as V1AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as V1AlphaResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest as V1AlphaMessage;

    let server = Server::start().await;
    let mut client = V1AlphaClient::new(server.channel());
    let requests = [
        V1AlphaMessage {
            host: String::new(),
            message_request: Some(V1AlphaRequest::ListServices(String::new())),
        },
        V1AlphaMessage {
            host: String::new(),
            message_request: Some(V1AlphaRequest::FileContainingSymbol(
                "voucherledger.v1.ProviderService".to_owned(),
            )),
        },
    ];
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .expect("the v1alpha reflection stream opens")
        .into_inner();
    let first = responses
        .message()
        .await
        .expect("the stream answers")
        .and_then(|response| response.message_response);
    let Some(V1AlphaResponse::ListServicesResponse(listed)) = first else {
        panic!("list_services answers a service list: {first:?}");
    };
    let names: Vec<&str> = listed
        .service
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    for expected in API_SERVICES {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let second = responses
        .message()
        .await
        .expect("the stream answers")
        .and_then(|response| response.message_response);
    let Some(V1AlphaResponse::FileDescriptorResponse(files)) = second else {
        panic!("file_containing_symbol answers file descriptors: {second:?}");
    };
    let has_the_service = files
        .file_descriptor_proto
        .iter()
        .filter_map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok())
        .flat_map(|file| file.service)
        .any(|service| service.name() == "ProviderService");
    assert!(has_the_service, "the descriptor holds ProviderService");
}

/// stderr is a file here, not a terminal: the human log holds no ANSI colour codes.
#[tokio::test]
async fn the_human_log_has_no_colour_codes_when_stderr_is_not_a_terminal() {
    let server = Server::start().await;
    let refused = server
        .client("not-a-token")
        .get_head(ledger_proto::v1::GetHeadRequest {})
        .await;
    assert!(refused.is_err(), "an unknown token is refused");
    let stopped = server.stop().await;
    let log = stopped.log();
    assert!(log.contains("voucher-ledger serving"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in the log: {log:?}");
}

/// Every refusal carries a `google.rpc.Status` whose details are a `google.rpc.ErrorInfo` and,
/// for malformed input, a `google.rpc.BadRequest`: reflection describes both, with every file
/// they import, so that grpcurl and other generic tools decode `grpc-status-details-bin`
/// without the proto files. A symbol that exists nowhere is still NOT_FOUND.
#[tokio::test]
async fn reflection_describes_the_error_details_and_every_file_they_import() {
    let server = Server::start().await;
    let mut seen: Vec<prost_types::FileDescriptorProto> = Vec::new();
    for symbol in ["google.rpc.ErrorInfo", "google.rpc.BadRequest"] {
        let MessageResponse::FileDescriptorResponse(files) = reflect(
            &server,
            MessageRequest::FileContainingSymbol(symbol.to_owned()),
        )
        .await
        else {
            panic!("file_containing_symbol {symbol} answers file descriptors");
        };
        let files: Vec<prost_types::FileDescriptorProto> = files
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                prost_types::FileDescriptorProto::decode(bytes.as_slice())
                    .expect("a file descriptor decodes")
            })
            .collect();
        let message = symbol.trim_start_matches("google.rpc.");
        assert!(
            files.iter().any(|file| file.package() == "google.rpc"
                && file.message_type.iter().any(|m| m.name() == message)),
            "{symbol} is described"
        );
        seen.extend(files);
    }
    // Every import of what was sent is itself described, here or on request.
    let dependencies: Vec<String> = seen
        .iter()
        .flat_map(|file| file.dependency.iter().cloned())
        .collect();
    assert!(
        !dependencies.is_empty(),
        "error_details.proto imports a file"
    );
    for dependency in dependencies {
        if seen.iter().any(|file| file.name() == dependency) {
            continue;
        }
        let answer = reflect(&server, MessageRequest::FileByFilename(dependency.clone())).await;
        assert!(
            matches!(answer, MessageResponse::FileDescriptorResponse(_)),
            "{dependency} is described: {answer:?}"
        );
    }

    // tonic's reflection ends the stream with NOT_FOUND (the protocol also allows an
    // ErrorResponse on it): either way, no descriptor.
    let mut client = ServerReflectionClient::new(server.channel());
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "google.rpc.NoSuchDetail".to_owned(),
            )),
        }]))
        .await
        .expect("the reflection stream opens")
        .into_inner();
    match responses.message().await {
        Err(status) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
        Ok(answer) => {
            let answer = answer.and_then(|response| response.message_response);
            let Some(MessageResponse::ErrorResponse(error)) = answer else {
                panic!("an unknown symbol is not described: {answer:?}");
            };
            assert_eq!(error.error_code, Code::NotFound as i32);
        }
    }
}
