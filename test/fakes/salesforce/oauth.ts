import { createVerify, randomBytes } from 'node:crypto';
import { json, type FakeRequest, type FakeResponse } from '../http';
import { SalesforceState } from './state';

/** The OAuth token endpoint (refresh token, client credentials, JWT bearer). */
export abstract class SalesforceOAuth extends SalesforceState {
  // --------------------------------------------------------------- OAuth

  protected token(req: FakeRequest): FakeResponse {
    if (req.method !== 'POST') return json(405, { error: 'invalid_request', error_description: 'must use HTTP POST' });
    const params = new URLSearchParams(req.body);
    const grantType = params.get('grant_type');
    const invalidClient = json(400, { error: 'invalid_client', error_description: 'invalid client credentials' });
    let userId: string | undefined;
    if (grantType === 'client_credentials') {
      const app = this.apps.get(params.get('client_id') ?? '');
      if (app === undefined || app.clientSecret === undefined || app.clientSecret !== params.get('client_secret')) return invalidClient;
      if (app.runAsUserId === undefined) return json(400, { error: 'invalid_grant', error_description: 'no client credentials user enabled' });
      userId = app.runAsUserId;
    } else if (grantType === 'refresh_token') {
      const clientId = params.get('client_id') ?? '';
      const app = this.apps.get(clientId);
      if (app === undefined) return invalidClient;
      if (app.clientSecret !== undefined && params.has('client_secret') && params.get('client_secret') !== app.clientSecret) return invalidClient;
      if (this.refreshTokens.get(params.get('refresh_token') ?? '') !== clientId) {
        return json(400, { error: 'invalid_grant', error_description: 'expired access/refresh token' });
      }
      userId = app.runAsUserId ?? this.firstUserId();
    } else if (grantType === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      const result = this.verifyJwt(params.get('assertion') ?? '');
      if (typeof result !== 'string') return result;
      userId = result;
    } else {
      return json(400, { error: 'unsupported_grant_type', error_description: 'grant type not supported' });
    }
    const accessToken = this.issueAccessToken();
    this.grants.push(grantType);
    return json(200, {
      access_token: accessToken,
      instance_url: this.instanceUrl,
      id: `${this.loginUrl}/id/${this.orgId}/${userId ?? ''}`,
      token_type: 'Bearer',
      issued_at: String(Date.now()),
      signature: randomBytes(32).toString('base64'),
      scope: 'api',
    });
  }

  protected verifyJwt(assertion: string): string | FakeResponse {
    const invalid = (description: string) => json(400, { error: 'invalid_grant', error_description: description });
    const [header, claims, signature] = assertion.split('.');
    if (header === undefined || claims === undefined || signature === undefined) return invalid('invalid assertion');
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      return invalid('invalid assertion');
    }
    const app = this.apps.get(typeof payload['iss'] === 'string' ? payload['iss'] : '');
    if (app?.certificate === undefined) return json(400, { error: 'invalid_client_id', error_description: 'client identifier invalid' });
    const signed = createVerify('RSA-SHA256').update(`${header}.${claims}`).verify(app.certificate, Buffer.from(signature, 'base64url'));
    if (!signed) return invalid('invalid assertion');
    const audiences = new Set(['https://login.salesforce.com', 'https://test.salesforce.com', new URL(this.loginUrl).origin]);
    if (typeof payload['aud'] !== 'string' || !audiences.has(payload['aud'])) return invalid('audience is invalid');
    if (typeof payload['exp'] !== 'number' || payload['exp'] * 1000 < Date.now()) return invalid('expired authorization code');
    const user = this.userByUsername(typeof payload['sub'] === 'string' ? payload['sub'] : '');
    if (user === undefined) return invalid('user hasn\'t approved this consumer');
    return user.Id;
  }
}
