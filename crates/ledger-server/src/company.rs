//! The company service (issue 15): usage codes, the company's consent to training, for a
//! `company:<enterprise number>` acting as itself and for the operator on behalf of any
//! company. Writes go through [`Ledger::write`] like every other (the domain's `authorize`
//! holds a company to its own enterprise number); reads are checked by `may_read`.

use ledger_proto::v1 as api;
use ledger_proto::v1::company_service_server::CompanyService;
use tonic::{Request, Response, Status};

use crate::auth::{may_call, may_read, Read, Role};
use crate::services::Ledger;
use crate::status::refusal_status;
use crate::wire;

/// Who may call the company service's writes at all: the company itself, or the operator.
const COMPANY_OR_OPERATOR: &[Role] = &[Role::Company, Role::Operator];

/// The code an order's answer names: from the recorded `UsageCodeOrdered` event.
fn ordered_code(write: &api::WriteResponse) -> Option<(String, String)> {
    use ledger_proto::event::v1::event::Payload;
    write
        .events
        .iter()
        .find_map(|event| match &event.payload {
            Some(Payload::UsageCodeOrdered(ordered)) => Some(ordered),
            _ => None,
        })
        .map(|ordered| {
            let written = ledger_domain::UsageCode::parse(&ordered.code)
                .map_or_else(|| ordered.code.clone(), |code| code.to_string());
            (written, ordered.filing_until.clone())
        })
}

#[tonic::async_trait]
impl CompanyService for Ledger {
    async fn order_usage_code(
        &self,
        request: Request<api::OrderUsageCodeRequest>,
    ) -> Result<Response<api::OrderUsageCodeResponse>, Status> {
        // The request id is the order id the code is derived from: a retry answers the same code.
        let write = self
            .write(
                "order_usage_code",
                request,
                COMPANY_OR_OPERATOR,
                |r, request_id, _| wire::codes::order_usage_code(r, request_id),
            )
            .await?
            .into_inner();
        let (code, filing_until) = ordered_code(&write).unwrap_or_default();
        Ok(Response::new(api::OrderUsageCodeResponse {
            write: Some(write),
            code,
            filing_until,
        }))
    }

    async fn order_usage_codes_batch(
        &self,
        request: Request<api::OrderUsageCodesBatchRequest>,
    ) -> Result<Response<api::BatchWriteResponse>, Status> {
        self.write_batch(
            "order_usage_codes_batch",
            "/voucherledger.v1.CompanyService/OrderUsageCodesBatch",
            request,
            COMPANY_OR_OPERATOR,
            |batch| batch.items,
            |r, request_id, _| wire::codes::order_usage_code(r, request_id),
        )
        .await
    }

    async fn cancel_usage_code(
        &self,
        request: Request<api::CancelUsageCodeRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        self.write(
            "cancel_usage_code",
            request,
            COMPANY_OR_OPERATOR,
            |r, _, _| wire::codes::cancel_usage_code(r),
        )
        .await
    }

    async fn get_usage_code(
        &self,
        request: Request<api::GetUsageCodeRequest>,
    ) -> Result<Response<api::UsageCodeView>, Status> {
        let principal = self.authenticate(&request)?;
        may_call(
            &principal,
            &[
                Role::Company,
                Role::Operator,
                Role::Provider,
                Role::Administration,
                Role::Auditor,
            ],
        )?;
        let code = wire::codes::usage_code(&request.get_ref().usage_code)
            .map_err(|r| refusal_status(&r))?;
        let as_of = request.get_ref().as_of.clone();
        let (answer, view) = self
            .report(as_of, move |projections| {
                wire::codes::usage_code_view(projections, &code)
            })
            .await?;
        may_read(
            &principal,
            &Read::UsageCode {
                enterprise_number: &view.enterprise_number,
                provider_id: &view.provider_id,
            },
        )?;
        Ok(Response::new(answer))
    }

    async fn list_usage_codes(
        &self,
        request: Request<api::ListUsageCodesRequest>,
    ) -> Result<Response<api::UsageCodeList>, Status> {
        let principal = self.authenticate(&request)?;
        let number = wire::enterprise_number(&request.get_ref().enterprise_number)
            .map_err(|r| refusal_status(&r))?;
        may_read(
            &principal,
            &Read::Company {
                enterprise_number: &number,
            },
        )?;
        let status =
            wire::codes::status_filter(request.get_ref().status).map_err(|r| refusal_status(&r))?;
        let as_of = request.get_ref().as_of.clone();
        self.report(as_of, move |projections| {
            wire::codes::usage_code_list(projections, &number, status)
        })
        .await
        .map(Response::new)
    }

    async fn list_company_redemptions(
        &self,
        request: Request<api::ListCompanyRedemptionsRequest>,
    ) -> Result<Response<api::ListEventsResponse>, Status> {
        self.company_redemptions(request).await.map(Response::new)
    }

    async fn get_wallet(
        &self,
        request: Request<api::GetWalletRequest>,
    ) -> Result<Response<api::Wallet>, Status> {
        let principal = self.authenticate(&request)?;
        let number = wire::enterprise_number(&request.get_ref().enterprise_number)
            .map_err(|r| refusal_status(&r))?;
        may_read(
            &principal,
            &Read::Company {
                enterprise_number: &number,
            },
        )?;
        let as_of = request.get_ref().as_of.clone();
        self.report(as_of, move |projections| wire::wallet(projections, &number))
            .await
            .map(Response::new)
    }
}
