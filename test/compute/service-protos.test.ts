import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type protobufjs from 'protobufjs';
import { serviceProtos, type ProtoNode } from '../../lib/compute/service-protos.ts';
import { jobServiceClient } from '../../lib/compute/jobs-client.ts';

const require = createRequire(import.meta.url);
const aiplatform = require.resolve('@google-cloud/aiplatform/package.json');
const protobuf = createRequire(aiplatform)('protobufjs') as typeof protobufjs;
const BUNDLE = '@google-cloud/aiplatform/build/protos/protos.json';

/** Every message and enum `type` reaches through its fields, by full name, with the type itself. */
function reachable(
  t: protobufjs.Type | protobufjs.Enum,
  seen = new Map<string, string>(),
): Map<string, string> {
  if (seen.has(t.fullName)) return seen;
  if (t instanceof protobuf.Enum) {
    seen.set(t.fullName, JSON.stringify(t.values));
    return seen;
  }
  const type = t as protobufjs.Type;
  seen.set(type.fullName, JSON.stringify(type.toJSON()));
  for (const f of type.fieldsArray) {
    f.resolve();
    if (f.resolvedType) reachable(f.resolvedType as protobufjs.Type, seen);
  }
  for (const n of type.nestedArray)
    if (n instanceof protobuf.Type || n instanceof protobuf.Enum) reachable(n, seen);
  return seen;
}

/** The types of `service` in `root`: its methods' messages and long-running operation types. */
function serviceTypes(root: protobufjs.Root, service: string): Map<string, string> {
  const svc = root.lookupService(service);
  const seen = new Map<string, string>();
  for (const m of svc.methodsArray) {
    m.resolve();
    reachable(m.resolvedRequestType!, seen);
    reachable(m.resolvedResponseType!, seen);
    for (const key of ['response_type', 'metadata_type']) {
      const name = m.options?.[`(google.longrunning.operation_info).${key}`] as string | undefined;
      if (name) reachable(svc.parent!.lookupTypeOrEnum(name), seen);
    }
  }
  return seen;
}

describe('serviceProtos', () => {
  const full = require(BUNDLE) as ProtoNode;

  it('keeps every type JobService reaches, as it is in the whole bundle, and drops the rest', () => {
    const cut = serviceProtos(full, 'google.cloud.aiplatform.v1.JobService', 'google.cloud.aiplatform');
    const whole = serviceTypes(protobuf.Root.fromJSON(full), 'google.cloud.aiplatform.v1.JobService');
    const cutRoot = protobuf.Root.fromJSON(cut);
    expect(serviceTypes(cutRoot, 'google.cloud.aiplatform.v1.JobService')).toEqual(whole);
    // Far fewer types in the zone: no v1beta1, and none of v1 that JobService does not reach.
    const aiplatform = (cut.nested!.google!.nested!.cloud!.nested!.aiplatform as ProtoNode).nested!;
    expect(Object.keys(aiplatform)).toEqual(['v1']);
    expect(cutRoot.lookup('google.cloud.aiplatform.v1.EndpointService')).toBeNull();
    expect(cutRoot.lookup('google.cloud.aiplatform.v1.CustomJob')).not.toBeNull();
    // Outside the zone everything stays (the long-running operations service, options types).
    expect(cutRoot.lookup('google.longrunning.Operations')).not.toBeNull();
    expect(cutRoot.lookup('google.api.HttpRule')).not.toBeNull();
    // The input is left as it was.
    expect(
      Object.keys((full.nested!.google!.nested!.cloud!.nested!.aiplatform as ProtoNode).nested!),
    ).toEqual(expect.arrayContaining(['v1', 'v1beta1']));
  });

  const tiny: ProtoNode = {
    nested: {
      pkg: {
        nested: {
          v1: {
            nested: {
              Svc: {
                methods: {
                  Get: { requestType: 'GetRequest', responseType: '.pkg.v1.Thing' },
                  Delete: {
                    requestType: 'GetRequest',
                    responseType: 'other.Operation',
                    options: { '(google.longrunning.operation_info).metadata_type': 'DeleteMeta' },
                  },
                },
              },
              GetRequest: { fields: { name: { type: 'string', id: 1 } } },
              Thing: {
                fields: {
                  part: { type: 'Holder.Part', id: 1 },
                  tags: { type: 'Tag', keyType: 'string', id: 2 },
                },
              },
              Holder: { fields: {}, nested: { Part: { fields: { s: { type: 'State', id: 1 } } } } },
              State: { values: { ON: 0 } },
              Tag: { fields: {} },
              DeleteMeta: { fields: {} },
              Unused: { fields: { t: { type: 'Thing', id: 1 } } },
            },
          },
          v2: { nested: { Thing: { fields: {} } } },
        },
      },
      other: { nested: { Operation: { fields: {} }, Spare: { fields: {} } } },
    },
  };

  it('follows relative, nested, absolute, map value and operation references; keeps whole what is outside', () => {
    const cut = serviceProtos(tiny, 'pkg.v1.Svc', 'pkg');
    const v1 = (cut.nested!.pkg as ProtoNode).nested!.v1!.nested!;
    expect(Object.keys(v1).sort()).toEqual([
      'DeleteMeta',
      'GetRequest',
      'Holder',
      'State',
      'Svc',
      'Tag',
      'Thing',
    ]);
    expect(Object.keys((cut.nested!.pkg as ProtoNode).nested!)).toEqual(['v1']);
    expect(cut.nested!.other).toBe(tiny.nested!.other);
    expect(() => protobuf.Root.fromJSON(cut).resolveAll()).not.toThrow();
  });

  it('names a service that is not in the bundle', () => {
    expect(() => serviceProtos(tiny, 'pkg.v1.Nope', 'pkg')).toThrow('pkg.v1.Nope: no such service');
  });
});

describe('jobServiceClient', () => {
  it('leaves the whole bundle to every other client of the package', () => {
    const saved = process.env.LOCKSTEP_VERTEX_ENDPOINT;
    process.env.LOCKSTEP_VERTEX_ENDPOINT = 'http://127.0.0.1:9';
    try {
      const client = jobServiceClient('us-central1');
      expect(typeof client.getCustomJob).toBe('function');
    } finally {
      if (saved === undefined) delete process.env.LOCKSTEP_VERTEX_ENDPOINT;
      else process.env.LOCKSTEP_VERTEX_ENDPOINT = saved;
    }
    const bundle = require(BUNDLE) as ProtoNode;
    expect(
      Object.keys((bundle.nested!.google!.nested!.cloud!.nested!.aiplatform as ProtoNode).nested!),
    ).toEqual(expect.arrayContaining(['v1', 'v1beta1']));
  });
});
