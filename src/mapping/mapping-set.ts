import type { CallActivity } from '../core/activity';
import type { CrmKind, CrmRecord } from '../core/crm-record';
import type { EventDisposition, SourceName, StoredEvent } from '../core/event';

/**
 * The contract between the mapping layer and the stages that use it: intake
 * classifies, the worker folds and builds CRM records.
 */

/** The loaded, validated mapping files. Immutable: a reload builds a new one. */
export interface MappingSet {
  /** What intake does with this event type. */
  classify(source: SourceName, eventType: string): EventDisposition;
  /**
   * Folds all events of one call into one activity; order-independent and
   * idempotent. Async because the JSONata escape hatch evaluates
   * asynchronously. Rejects with MappingError.
   */
  fold(source: SourceName, callKey: string, events: StoredEvent[]): Promise<CallActivity>;
  /** The records to write for an activity, in the shape of one CRM. Rejects with MappingError. */
  toCrm(activity: CallActivity, crm: CrmKind): Promise<CrmRecord[]>;
}
