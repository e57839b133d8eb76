// check.mjs on a small stack of its own, so that what `make test` relies on it to catch is
// itself tested: `node --test tools/iam-check/` (scripts/check-iam.sh runs it first).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const checker = join(dirname(fileURLToPath(import.meta.url)), 'check.mjs')
const table = 'arn:aws:dynamodb:us-east-1:123456789012:table/t'

function role(statements) {
  return {
    role: 'Role',
    table_arn: table,
    problems: [],
    outside_policies: [],
    policies: [{ name: 'p', document: { Version: '2012-10-17', Statement: statements } }],
  }
}

const onlyConnections = role([
  {
    Sid: 'RecordConnection',
    Effect: 'Allow',
    Action: 'dynamodb:PutItem',
    Resource: table,
    Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['CONN#*'] } },
  },
])
const readsUsers = role([{ Sid: 'ReadUsers', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: table }])

const call = (fn, action, keys, test = 'a_test') => ({
  function: fn,
  operation: action,
  action: `dynamodb:${action}`,
  resource: 'table',
  leading_keys: keys,
  test,
})

function run(functions, calls, ...flags) {
  const dir = mkdtempSync(join(tmpdir(), 'iam-check-'))
  writeFileSync(join(dir, 'stack.json'), JSON.stringify({ region: 'us-east-1', account: '123456789012', functions }))
  mkdirSync(join(dir, 'calls'))
  for (const [fn, lines] of Object.entries(calls)) {
    writeFileSync(join(dir, 'calls', `${fn}.jsonl`), lines.map((l) => JSON.stringify(l)).join('\n') + '\n')
  }
  const out = spawnSync(process.execPath, [checker, join(dir, 'stack.json'), join(dir, 'calls'), ...flags], {
    encoding: 'utf8',
  })
  return { status: out.status, text: out.stdout + out.stderr }
}

test('calls the roles allow pass, and other functions calls are tried and denied', () => {
  const { status, text } = run(
    { 'ws-connect': onlyConnections, 'get-user': readsUsers },
    {
      'ws-connect': [call('ws-connect', 'PutItem', ['CONN#u'])],
      'get-user': [call('get-user', 'GetItem', ['USER#u'])],
    },
    '--require-all',
  )
  assert.equal(status, 0, text)
  assert.match(text, /ws-connect: 1\/1 recorded calls allowed; [1-9]\d*\/\d+ calls it never makes denied/)
})

test('a call its role does not allow fails, naming the call, its test and the statement', () => {
  const { status, text } = run(
    { 'ws-connect': onlyConnections },
    { 'ws-connect': [call('ws-connect', 'PutItem', ['USER#u'], 'connect_records_it')] },
  )
  assert.equal(status, 1)
  assert.match(text, /ws-connect: PutItem needs dynamodb:PutItem on .*table\/t with dynamodb:LeadingKeys \["USER#u"\]/)
  assert.match(text, /recorded by test connect_records_it/)
  assert.match(text, /RecordConnection .*ForAllValues:StringLike dynamodb:LeadingKeys \["CONN#\*"\] does not hold/)
})

test('an action no statement grants fails as such', () => {
  const { status, text } = run({ 'ws-connect': onlyConnections }, { 'ws-connect': [call('ws-connect', 'DeleteItem', ['CONN#u'])] })
  assert.equal(status, 1)
  assert.match(text, /no statement of Role grants dynamodb:DeleteItem/)
})

test('a role that allows every call its function never makes fails as not narrowed', () => {
  const everything = role([{ Sid: 'All', Effect: 'Allow', Action: 'dynamodb:*', Resource: '*' }])
  const { status, text } = run(
    { 'ws-connect': everything, 'get-user': readsUsers },
    {
      'ws-connect': [call('ws-connect', 'PutItem', ['CONN#u'])],
      'get-user': [call('get-user', 'GetItem', ['USER#u'])],
    },
  )
  assert.equal(status, 1)
  assert.match(text, /ws-connect: its role Role allows every one of the \d+ DynamoDB calls .* not narrowed/)
})

test('a function with a DynamoDB role and no recorded call fails only when the whole suite ran', () => {
  const functions = { 'ws-connect': onlyConnections, 'get-user': readsUsers }
  const calls = { 'ws-connect': [call('ws-connect', 'PutItem', ['CONN#u'])] }
  assert.equal(run(functions, calls).status, 0)
  const { status, text } = run(functions, calls, '--require-all')
  assert.equal(status, 1)
  assert.match(text, /get-user: its role grants DynamoDB actions but its tests recorded no call/)
})

test('calls recorded for a function the template lacks fail', () => {
  const { status, text } = run({ 'ws-connect': onlyConnections }, {
    'ws-connect': [call('ws-connect', 'PutItem', ['CONN#u'])],
    'ws-conect': [call('ws-conect', 'PutItem', ['CONN#u'])],
  })
  assert.equal(status, 1)
  assert.match(text, /"ws-conect", which is no function/)
})
