/**
 * A stateful fake of HubSpot's CRM v3/v4 APIs (private-app token auth),
 * answering with the real shapes:
 *  - POST /crm/v3/objects/{type}/batch/create: 201; with some inputs failing
 *    and every input traced by objectWriteTraceId, 207 with `errors` (each
 *    carrying context.objectWriteTraceId): HubSpot documents multi-status for
 *    batch create only;
 *  - POST /crm/v3/objects/{type}/batch/upsert|update: 200; any input failing
 *    fails the whole batch, nothing written: 400 VALIDATION_ERROR (the
 *    validation results embedded in the message, as HubSpot writes them),
 *    409 CONFLICT quoting a unique value that exists already, or 404
 *    OBJECT_NOT_FOUND listing the missing ids in context.ids (a create
 *    refused whole, `rejectWholeBatch`, answers alike); an
 *    idProperty without unique values is refused with HubSpot's
 *    "Unable to perform update/upsert by non-unique ..." message;
 *  - POST /crm/v3/objects/{type}/batch/read: 200;
 *  - GET /crm/v3/properties/{type}/{name}: the property definition
 *    (hasUniqueValue...), 404 when the portal has no such property;
 *  - POST /crm/v3/objects/{type}/search: filterGroups (OR) of filters (AND),
 *    EQ/NEQ/IN/NOT_IN/HAS_PROPERTY/NOT_HAS_PROPERTY, 200 a page, `after`
 *    paging, the documented limits (5 groups, 6 filters a group, 18 in all,
 *    3,000 characters); contacts carry the computed
 *    hs_searchable_calculated_phone_number / _mobile_number; a record created
 *    through the API is found only `searchIndexDelayMs` later, as HubSpot's
 *    search index lags writes by seconds;
 *  - GET /crm/v3/owners?email=&limit=&after=;
 *  - POST /crm/v4/associations/{from}/{to}/batch/associate/default and
 *    GET /crm/v4/objects/{type}/{id}/associations/{toType};
 *  - errors with status/message/correlationId/category (and policyName on 429);
 *  - X-HubSpot-RateLimit-* headers on every non-search answer, with the
 *    10-second and daily limits enforced (429 TEN_SECONDLY_ROLLING / DAILY).
 */

export { compareIds, type FakeHubSpotOptions, type HsObject, type HsOwner, type HubSpotRequestKind, type HubSpotValidationRule } from './hubspot/shapes';
export { FakeHubSpot, startFakeHubSpot, type StartedFakeHubSpot } from './hubspot/fake';
