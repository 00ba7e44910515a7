// Module hooks for deny-imports.mjs: a bare specifier matching the pattern throws.
let deny;

export function initialize({ pattern }) {
  deny = pattern ? new RegExp(pattern) : undefined;
}

export async function resolve(specifier, context, next) {
  if (deny && !/^(\.|\/|node:|file:|data:)/.test(specifier) && deny.test(specifier)) {
    throw new Error(`deny-imports: "${specifier}" imported from ${context.parentURL}`);
  }
  return next(specifier, context);
}
