/** The egress policy: one check for every connection a job makes (http, database, sftp, WASM host calls). */
export {
  ALLOW_SETTING,
  DENY_SETTING,
  EgressDenied,
  METADATA_HOSTS,
  checkAddress,
  checkBeforeResolution,
  checkHostName,
  configureEgress,
  applyEgressSnapshot,
  egressSnapshot,
  type EgressSnapshot,
  egressDeniedIn,
  egressHostProblem,
  egressLookup,
  egressSettings,
  egressUrlProblem,
  registerOwnListenAddress,
  resolveEgress,
  type EgressTarget,
  type Refusal,
} from './policy.ts';
export { EgressSocket, egressConnect, egressConnector } from './connect.ts';
export { egressDispatcher, egressFetch } from './http.ts';
export { type EgressResponse, discardBody, egressRequest } from './request.ts';
export { parseEgressRules, type EgressRules } from './rules.ts';
export { formatIp, parseIp, embeddedV4 } from './address.ts';
