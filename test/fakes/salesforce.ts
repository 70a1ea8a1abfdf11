/**
 * A stateful fake of the Salesforce REST API, answering with the real shapes:
 *  - POST /services/oauth2/token: client_credentials (with a run-as user),
 *    refresh_token, and the JWT bearer grant (RS256 checked against the
 *    certificate registered for the connected app); OAuth error bodies.
 *  - GET  /services/data/vXX.X/search?q=FIND {...} IN PHONE FIELDS RETURNING Contact(...), Lead(...)
 *    (phone search on digits, matching stored numbers in any format)
 *  - GET  /services/data/vXX.X/query?q=SELECT ... WHERE f IN (...) AND g = x
 *  - PATCH /services/data/vXX.X/composite/sobjects/{Type}/{ExtIdField}
 *    (sObject Collections upsert: 200 with one result per record, per-record
 *    errors carrying statusCode; top-level errors carrying errorCode)
 *  - PATCH /services/data/vXX.X/sobjects/{Type}/{ExtIdField}/{value} (201 created / 200 updated)
 *  - GET  /services/data/vXX.X/sobjects/{Type}/{Id}
 * Every data response carries Sforce-Limit-Info; past the daily limit the
 * org answers 403 REQUEST_LIMIT_EXCEEDED. Task fields are checked like an
 * org would: unknown fields, restricted picklists, references (WhoId,
 * OwnerId, WhatId), TaskSubtype being create-only, and validation rules
 * added by tests.
 */

export { parseSoql, phoneMatcher, type FakeSalesforceOptions, type SObject, type SObjectValue, type SalesforceRequestKind, type ValidationRule } from './salesforce/shapes';
export { FakeSalesforce, startFakeSalesforce, type StartedFakeSalesforce } from './salesforce/fake';
