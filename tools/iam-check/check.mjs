// Least privilege, checked: every AWS call a function's tests recorded
// (testkit's RecordFunctionCalls, target/iam-calls/<function>.jsonl) is evaluated against
// that function's role from the translated template (stack.py), offline, by
// @cloud-copilot/iam-simulate. Run by scripts/check-iam.sh.
//
//   node check.mjs STACK_JSON CALLS_DIR [--require-all]
//
// Fails when
// - a recorded call is not allowed (listed with function, operation, resource, keys, the
//   test that made it and the statements that grant the action but did not apply);
// - a function's role allows every call of other functions it was tried with: for each
//   function, the calls of every other function it never makes, and its own calls with
//   the partition key of each key family it never touches, must not all be allowed;
// - calls were recorded for a function the template does not have;
// - with --require-all (the whole suite ran), a function whose role grants DynamoDB
//   actions recorded nothing: its tests do not run its handler through
//   crates/functions/tests/support/recorded.rs (or testkit::as_function).

import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { runSimulation } from '@cloud-copilot/iam-simulate'

const [stackPath, callsDir, ...flags] = process.argv.slice(2)
if (!stackPath || !callsDir) {
  console.error('usage: node check.mjs STACK_JSON CALLS_DIR [--require-all]')
  process.exit(2)
}
const requireAll = flags.includes('--require-all')
const stack = JSON.parse(readFileSync(stackPath, 'utf8'))
const principalOf = (name) => `arn:aws:sts::${stack.account}:assumed-role/${name}/${name}`

// The family of a partition key, as testkit::key_prefix: up to its first '#', or '*'.
const prefixOf = (key) => (key.includes('#') ? key.slice(0, key.indexOf('#') + 1) : '*')
// A resource without its connection id, as testkit::resource_family.
const familyOf = (resource) => resource.replace(/(\/@connections\/).*$/, '$1')
const shapeOf = (call) =>
  [
    call.action,
    familyOf(call.resource),
    call.leading_keys ? [...new Set(call.leading_keys.map(prefixOf))].sort().join(',') : '-',
  ].join(' ')

function readCalls(file) {
  const byShape = new Map()
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue
    const call = JSON.parse(line)
    const shape = shapeOf(call)
    if (!byShape.has(shape)) byShape.set(shape, call)
  }
  return [...byShape.values()]
}

const recorded = new Map()
if (existsSync(callsDir)) {
  for (const file of readdirSync(callsDir).filter((f) => f.endsWith('.jsonl')).sort()) {
    recorded.set(file.replace(/\.jsonl$/, ''), readCalls(join(callsDir, file)))
  }
}

// The ARN a recorded resource has for `fn`: `table`, `index/<name>` on the table its
// TABLE_NAME names; `<METHOD>/@connections/<id>` on the WebSocket stage its
// WEBSOCKET_API_ENDPOINT names, or, for a function without one, the stack's.
const anyConnectionsPrefix = Object.values(stack.functions).find((f) => f.connections_arn_prefix)
  ?.connections_arn_prefix
function arnFor(fn, call) {
  if (call.action === 'execute-api:ManageConnections') {
    const prefix = fn.connections_arn_prefix ?? anyConnectionsPrefix
    return prefix && prefix + call.resource.replace(/^\//, '')
  }
  if (!fn.table_arn) return undefined
  return call.resource === 'table' ? fn.table_arn : `${fn.table_arn}/${call.resource}`
}

async function evaluate(name, fn, call) {
  const resource = arnFor(fn, call)
  if (!resource) return { allowed: false, why: ['the function names no table (TABLE_NAME) or stage'] }
  const contextVariables = {}
  if (call.leading_keys) contextVariables['dynamodb:LeadingKeys'] = call.leading_keys
  const response = await runSimulation(
    {
      identityPolicies: fn.policies.map((p) => ({ name: p.name, policy: p.document })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action: call.action,
        principal: principalOf(fn.role ?? name),
        resource: { accountId: stack.account, resource },
        contextVariables,
      },
    },
    {},
  )
  if (response.resultType === 'error') {
    return { allowed: false, resource, why: [`the simulator refused the request: ${JSON.stringify(response.errors)}`] }
  }
  const allowed = response.overallResult === 'Allowed'
  const identity = response.result?.analysis?.identityAnalysis
  const why = (identity?.unmatchedStatements ?? [])
    .filter((s) => s.actionMatch)
    .map((s) => {
      const sid = `${s.explain?.identifier ?? s.statement?.Sid ?? '(no Sid)'} of policy ${s.policyId}`
      const reasons = []
      if (!s.resourceMatch) reasons.push(`its Resource does not match ${resource}`)
      for (const c of s.explain?.conditions ?? []) {
        if (!c.matches) {
          const wanted = (c.values ?? []).map((v) => v.value)
          reasons.push(
            `${c.operator} ${c.conditionKeyValue} ${JSON.stringify(wanted)} does not hold for ${JSON.stringify(c.unmatchedValues ?? call.leading_keys ?? [])}`,
          )
        }
      }
      return `${sid}: ${reasons.join('; ') || 'does not apply'}`
    })
  for (const s of identity?.denyStatements ?? []) why.push(`${s.statement?.Sid ?? 'a statement'} denies it`)
  return { allowed, resource, why }
}

const grantsDynamoDb = (fn) =>
  fn.policies.some((p) =>
    [p.document.Statement]
      .flat()
      .some((s) => s.Effect === 'Allow' && [s.Action].flat().some((a) => a === '*' || /^dynamodb:/i.test(a))),
  )

const problems = []
const lines = []
const allFamilies = new Set()
for (const calls of recorded.values()) {
  for (const call of calls) for (const key of call.leading_keys ?? []) allFamilies.add(prefixOf(key))
}
for (const fn of Object.values(stack.functions)) {
  for (const p of fn.policies) {
    for (const s of [p.document.Statement].flat()) {
      for (const pattern of [s.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'] ?? []].flat()) {
        allFamilies.add(prefixOf(pattern))
      }
    }
  }
}
allFamilies.delete('*')

for (const name of recorded.keys()) {
  if (!stack.functions[name]) {
    problems.push(`calls were recorded for "${name}", which is no function (Handler) of the template`)
  }
}

for (const [name, fn] of Object.entries(stack.functions).sort(([a], [b]) => a.localeCompare(b))) {
  for (const problem of fn.problems) problems.push(`${name}: ${problem}`)
  if (fn.outside_policies.length) {
    lines.push(`  ${name}: managed policies not in the template, not evaluated: ${fn.outside_policies.join(', ')}`)
  }
  const calls = recorded.get(name) ?? []
  if (calls.length === 0) {
    if (grantsDynamoDb(fn) && requireAll) {
      problems.push(
        `${name}: its role grants DynamoDB actions but its tests recorded no call: run its handler ` +
          `through crates/functions/tests/support/recorded.rs (or testkit::as_function)`,
      )
    } else {
      lines.push(`  ${name}: no call recorded${grantsDynamoDb(fn) ? ' (its role grants DynamoDB actions)' : ''}`)
    }
    continue
  }

  let denied = 0
  for (const call of calls) {
    const verdict = await evaluate(name, fn, call)
    if (!verdict.allowed) {
      denied += 1
      problems.push(
        [
          `${name}: ${call.operation} needs ${call.action} on ${verdict.resource ?? call.resource}` +
            (call.leading_keys ? ` with dynamodb:LeadingKeys ${JSON.stringify(call.leading_keys)}` : '') +
            `, which its role ${fn.role} does not allow (recorded by test ${call.test})`,
          ...(verdict.why.length
            ? verdict.why.map((w) => `    statement ${w}`)
            : [`    no statement of ${fn.role} grants ${call.action}`]),
        ].join('\n'),
      )
    }
  }

  // Calls this function never makes: every other function's calls of another shape, and
  // its own calls on each key family it never touches.
  const own = new Set(calls.map(shapeOf))
  const ownFamilies = new Set(calls.flatMap((c) => (c.leading_keys ?? []).map(prefixOf)))
  const foreign = new Map()
  for (const [other, otherCalls] of recorded) {
    if (other === name) continue
    for (const call of otherCalls) {
      const shape = shapeOf(call)
      if (!own.has(shape) && !foreign.has(shape)) foreign.set(shape, { ...call, from: other })
    }
  }
  for (const call of calls) {
    if (!call.leading_keys || call.resource !== 'table') continue
    for (const family of allFamilies) {
      if (ownFamilies.has(family)) continue
      const replay = { ...call, leading_keys: [`${family}00000000-0000-4000-8000-000000000000`], from: name }
      const shape = shapeOf(replay)
      if (!own.has(shape) && !foreign.has(shape)) foreign.set(shape, replay)
    }
  }
  let refused = 0
  let keyed = 0
  let keyedRefused = 0
  const wide = []
  for (const call of foreign.values()) {
    const verdict = await evaluate(name, fn, call)
    if (call.leading_keys?.length) keyed += 1
    if (verdict.allowed) {
      wide.push(`${call.action} ${familyOf(call.resource)} ${JSON.stringify([...new Set((call.leading_keys ?? []).map(prefixOf))])}`)
    } else {
      refused += 1
      if (call.leading_keys?.length) keyedRefused += 1
    }
  }
  // The requirement is on key families: a role denying only other services' actions would
  // still reach every item of the table.
  if (grantsDynamoDb(fn) && keyed > 0 && keyedRefused === 0) {
    problems.push(
      `${name}: its role ${fn.role} allows every one of the ${keyed} DynamoDB calls on key ` +
        `families or items it never touches that it was tried with: it is not narrowed to its calls`,
    )
  }
  lines.push(
    `  ${name}: ${calls.length - denied}/${calls.length} recorded calls allowed; ` +
      `${refused}/${foreign.size} calls it never makes denied` +
      (process.env.IAM_CHECK_VERBOSE && wide.length ? `; allowed anyway: ${wide.join(', ')}` : ''),
  )
}

console.log(`check-iam: ${Object.keys(stack.functions).length} functions, calls from ${callsDir}`)
for (const line of lines) console.log(line)
if (problems.length) {
  console.error(`\ncheck-iam: ${problems.length} problem(s):`)
  for (const problem of problems) console.error(`- ${problem}`)
  process.exit(1)
}
console.log('check-iam: every recorded call is allowed by its function\'s role')
