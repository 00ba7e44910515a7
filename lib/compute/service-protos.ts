/**
 * The part of a protobufjs JSON bundle that one service needs. A generated client loads its
 * package's whole bundle and resolves every type in it when it is constructed: for Vertex AI
 * that is 3,335 types of v1 and v1beta1, about a second of CPU, to call a service that reaches
 * 116 of them. The pruned bundle keeps, inside `within` (e.g. `google.cloud.aiplatform`), only
 * the types reachable from the service's methods: request and response types, the response and
 * metadata types of its long-running operations, every field's type and map key, and whole
 * messages with their nested types. Everything outside `within` (google.protobuf, google.api,
 * google.longrunning, ...) is kept as it is, so options and operations clients see what they
 * always saw.
 */

/** A namespace, message, enum or service in protobufjs' JSON form (the fields lockstep reads). */
export interface ProtoNode {
  nested?: Record<string, ProtoNode>;
  fields?: Record<string, { type: string; [key: string]: unknown }>;
  values?: Record<string, number>;
  methods?: Record<string, { requestType: string; responseType: string; options?: Record<string, unknown> }>;
  [key: string]: unknown;
}

/** The node at `parts` below `root`, or undefined. */
function nodeAt(root: ProtoNode, parts: string[]): ProtoNode | undefined {
  let n: ProtoNode | undefined = root;
  for (const p of parts) {
    n = n?.nested?.[p];
    if (!n) return undefined;
  }
  return n;
}

/**
 * Resolves type reference `name` as protoc does: absolute with a leading dot, else from the
 * innermost enclosing scope of `scope` outward.
 */
function resolveType(root: ProtoNode, scope: string[], name: string): string[] | undefined {
  if (name.startsWith('.')) {
    const parts = name.slice(1).split('.');
    return nodeAt(root, parts) ? parts : undefined;
  }
  const parts = name.split('.');
  for (let i = scope.length; i >= 0; i--) {
    const candidate = [...scope.slice(0, i), ...parts];
    if (nodeAt(root, candidate)) return candidate;
  }
  return undefined; // a scalar (string, int64, ...)
}

const LRO_KEYS = [
  '(google.longrunning.operation_info).response_type',
  '(google.longrunning.operation_info).metadata_type',
];

/** Type names a node refers to (its fields' types, its methods' messages). */
function referencesOf(node: ProtoNode): string[] {
  const refs: string[] = [];
  for (const f of Object.values(node.fields ?? {})) {
    refs.push(f.type); // map keys are scalars: only the value type can name a message
  }
  for (const m of Object.values(node.methods ?? {})) {
    refs.push(m.requestType, m.responseType);
    for (const k of LRO_KEYS) if (typeof m.options?.[k] === 'string') refs.push(m.options[k]);
  }
  return refs;
}

/**
 * `bundle` with the types inside `within` cut to those `service` reaches (both dotted full
 * names, e.g. `google.cloud.aiplatform.v1.JobService` within `google.cloud.aiplatform`). The
 * result shares unchanged nodes with `bundle`; neither is modified.
 */
export function serviceProtos(bundle: ProtoNode, service: string, within: string): ProtoNode {
  const zone = within.split('.');
  const start = service.split('.');
  if (!nodeAt(bundle, start)?.methods) throw new Error(`${service}: no such service in the proto bundle`);
  const inZone = (parts: string[]) => parts.length > zone.length && zone.every((z, i) => parts[i] === z);
  // Kept types are whole top-level types of their package: a reference to a nested type keeps
  // its outermost enclosing message (whose nested types are then reached through it).
  const outermost = (parts: string[]): string[] => {
    for (let i = zone.length + 1; i <= parts.length; i++) {
      const n = nodeAt(bundle, parts.slice(0, i))!;
      if (n.fields || n.values || n.methods) return parts.slice(0, i);
    }
    return parts;
  };
  const kept = new Set<string>();
  const queue = [start];
  while (queue.length > 0) {
    const parts = queue.pop()!;
    const key = parts.join('.');
    if (kept.has(key)) continue;
    kept.add(key);
    const node = nodeAt(bundle, parts)!;
    const scopes: [string[], ProtoNode][] = [[parts, node]];
    // Nested messages belong to the kept message: their references count too.
    for (let i = 0; i < scopes.length; i++) {
      const [scope, n] = scopes[i]!;
      for (const ref of referencesOf(n)) {
        const target = resolveType(bundle, scope, ref);
        if (target && inZone(target)) queue.push(outermost(target));
      }
      for (const [name, child] of Object.entries(n.nested ?? {})) scopes.push([[...scope, name], child]);
    }
  }
  // Rebuild the zone with only the namespaces on the way to a kept type.
  const prune = (node: ProtoNode, parts: string[]): ProtoNode | undefined => {
    const key = parts.join('.');
    if (kept.has(key)) return node;
    if (node.fields || node.values || node.methods || !node.nested) return undefined;
    const nested: Record<string, ProtoNode> = {};
    for (const [name, child] of Object.entries(node.nested)) {
      const p = prune(child, [...parts, name]);
      if (p) nested[name] = p;
    }
    return Object.keys(nested).length > 0 ? { ...node, nested } : undefined;
  };
  const rebuild = (node: ProtoNode, depth: number): ProtoNode => {
    if (depth === zone.length) return prune(node, zone) ?? { ...node, nested: {} };
    const name = zone[depth]!;
    return { ...node, nested: { ...node.nested, [name]: rebuild(node.nested![name]!, depth + 1) } };
  };
  return rebuild(bundle, 0);
}
