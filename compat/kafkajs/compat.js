// kafkajs compatibility checks against a Sluice agent, run by
// compat/kafkajs_test.go: node compat.js <bootstrap> codecs|group|admin|sasl|txn.
// Prints PASS on success; exits non-zero with the reason otherwise.
'use strict'
const { Kafka, logLevel, CompressionTypes, CompressionCodecs, ConfigResourceTypes } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const LZ4Codec = require('kafkajs-lz4')

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec

const [bootstrap, mode] = process.argv.slice(2)
// SASL (issue 14): KAFKAJS_SASL=mechanism:user:password logs every client
// in (mechanism as kafkajs names it: plain, scram-sha-256, scram-sha-512).
const saslOf = v => {
  if (!v) return undefined
  const [mechanism, username, ...rest] = v.split(':')
  return { mechanism, username, password: rest.join(':') }
}
const sasl = saslOf(process.env.KAFKAJS_SASL)
const kafka = new Kafka({ clientId: 'compat-kafkajs', brokers: bootstrap.split(','), logLevel: logLevel.ERROR,
  retry: { retries: 10, initialRetryTime: 100 }, sasl })

let failures = 0
function fail (msg) { failures++; console.log('FAIL: ' + msg) }
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

const keyOf = (topic, i) => `${topic}-k${String(i).padStart(6, '0')}`
function valueOf (topic, i) {
  const n = 20 + (i * 37) % 3000
  let s = ''
  while (s.length < n) s += `${topic}/${i};`
  return s.slice(0, n)
}
const indexOf = (topic, key) => parseInt(key.slice(topic.length + 2), 10)

async function produce (topic, compression, from, n) {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true })
  await producer.connect()
  try {
    const messages = []
    for (let i = from; i < from + n; i++) messages.push({ key: keyOf(topic, i), value: valueOf(topic, i) })
    // Batches of 50, in order, so per-partition order is produce order.
    for (let j = 0; j < messages.length; j += 50) {
      await producer.send({ topic, acks: -1, compression, messages: messages.slice(j, j + 50) })
    }
  } finally {
    await producer.disconnect()
  }
}

async function highWatermarks (topic) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const out = {}
    for (const p of await admin.fetchTopicOffsets(topic)) out[p.partition] = Number(p.high)
    return out
  } finally {
    await admin.disconnect()
  }
}

function waitFor (what, cond, ms = 60000) {
  const deadline = Date.now() + ms
  return (async () => {
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await sleep(50)
    }
  })()
}

// A group member that records every record and its assignments.
async function member (topic, groupId, name) {
  const m = { name, got: [], assigned: [] }
  m.consumer = kafka.consumer({ groupId, sessionTimeout: 10000, rebalanceTimeout: 10000,
    heartbeatInterval: 300, maxWaitTimeInMs: 200 })
  m.consumer.on(m.consumer.events.GROUP_JOIN, e => {
    m.assigned = (e.payload.memberAssignment[topic] || []).slice()
  })
  await m.consumer.connect()
  await m.consumer.subscribe({ topic, fromBeginning: true })
  await m.consumer.run({
    eachMessage: async ({ partition, message }) => {
      m.got.push({ partition, offset: Number(message.offset), key: message.key.toString(), value: message.value.toString() })
    }
  })
  return m
}

function checkExact (topic, n, got) {
  if (got.length !== n) fail(`${topic}: consumed ${got.length} records, want ${n}`)
  const seen = new Set()
  const byPart = {}
  for (const r of got) {
    if (seen.has(r.key)) fail(`${topic}: ${r.key} consumed twice`)
    seen.add(r.key);
    (byPart[r.partition] = byPart[r.partition] || []).push(r)
    const i = indexOf(topic, r.key)
    if (!(i >= 0 && i < n)) fail(`${topic}: unexpected key ${r.key}`)
    else if (r.value !== valueOf(topic, i)) fail(`${topic}: value of ${r.key} differs`)
  }
  for (let i = 0; i < n; i++) if (!seen.has(keyOf(topic, i))) fail(`${topic}: ${keyOf(topic, i)} missing`)
  for (const [p, rs] of Object.entries(byPart)) {
    rs.sort((a, b) => a.offset - b.offset)
    rs.forEach((r, j) => {
      if (r.offset !== j) fail(`${topic}[${p}]: offset ${r.offset} at position ${j}, want dense from 0`)
      if (j > 0 && indexOf(topic, rs[j - 1].key) >= indexOf(topic, r.key)) fail(`${topic}[${p}]: produce order lost at offset ${r.offset}`)
    })
  }
}

async function codecs () {
  const n = 500
  const types = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy, lz4: CompressionTypes.LZ4 }
  for (const [name, codec] of Object.entries(types)) {
    const topic = 'kafkajs-' + name
    await produce(topic, codec, 0, n)
    const m = await member(topic, 'kafkajs-read-' + name, 'reader-' + name)
    await waitFor(`${topic}: ${n} records`, () => m.got.length >= n)
    await sleep(300) // let any duplicate show
    await m.consumer.disconnect()
    checkExact(topic, n, m.got)
    console.log(`codec ${name}: ${m.got.length} records round-tripped`)
  }
  // kafkajs ships no zstd codec; @kafkajs/zstd (native cppzst) does not
  // build here. The producer must refuse rather than send garbage.
  try {
    await produce('kafkajs-zstd', CompressionTypes.ZSTD, 0, 1)
    fail('zstd: produce succeeded without a codec')
  } catch (e) {
    if (!/ZSTD compression not implemented/.test(e.message)) fail(`zstd: unexpected error ${e.message}`)
    else console.log('codec zstd: not supported by kafkajs without a plugin (' + e.message + ')')
  }
}

async function group () {
  const topic = 'kafkajs-group'
  const groupId = 'kafkajs-g'
  const n1 = 400; const n2 = 400; const n3 = 200
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true })
  const a = await member(topic, groupId, 'a')
  const b = await member(topic, groupId, 'b')
  await waitFor('both members assigned', () => a.assigned.length > 0 && b.assigned.length > 0 &&
    a.assigned.length + b.assigned.length === 4 && new Set([...a.assigned, ...b.assigned]).size === 4)
  console.log(`assignment: a ${JSON.stringify(a.assigned)}, b ${JSON.stringify(b.assigned)}`)
  await produce(topic, CompressionTypes.None, 0, n1)
  const distinct = (...ms) => new Set(ms.flatMap(m => m.got.map(r => r.key))).size
  await waitFor(`${n1} records across a and b`, () => distinct(a, b) >= n1)
  if (a.got.length === 0 || b.got.length === 0) fail(`a member consumed nothing: a ${a.got.length}, b ${b.got.length}`)

  await b.consumer.disconnect() // commits what b processed, leaves
  await waitFor('a takes all partitions', () => a.assigned.length === 4)
  await produce(topic, CompressionTypes.None, n1, n2)
  await waitFor(`${n1 + n2} records`, () => distinct(a, b) >= n1 + n2)
  await a.consumer.disconnect()

  const all = [...a.got, ...b.got]
  const count = {}
  for (const r of all) {
    count[r.key] = (count[r.key] || 0) + 1
    if (r.value !== valueOf(topic, indexOf(topic, r.key))) fail(`value of ${r.key} differs`)
  }
  let dups = 0
  for (let i = 0; i < n1 + n2; i++) {
    const c = count[keyOf(topic, i)] || 0
    if (c === 0) fail(`${keyOf(topic, i)} skipped`)
    if (c > 1) dups += c - 1
  }
  if (Object.keys(count).length !== n1 + n2) fail(`${Object.keys(count).length} distinct keys, want ${n1 + n2}`)
  console.log(`phase 1+2: ${all.length} deliveries, ${dups} re-delivered (at-least-once)`)

  const hwm = await highWatermarks(topic)
  const committed = await admin.fetchOffsets({ groupId, topics: [topic] })
  for (const p of committed[0].partitions) {
    if (Number(p.offset) !== hwm[p.partition]) fail(`committed offset of ${topic}[${p.partition}] = ${p.offset}, want ${hwm[p.partition]}`)
  }
  if (committed[0].partitions.length !== 4) fail(`committed offsets for ${committed[0].partitions.length} partitions, want 4`)
  const groups = await admin.describeGroups([groupId])
  if (groups.groups[0].state !== 'Empty') fail(`group state ${groups.groups[0].state} after all left, want Empty`)

  await produce(topic, CompressionTypes.None, n1 + n2, n3)
  const d = await member(topic, groupId, 'd')
  await waitFor(`new member reads ${n3}`, () => new Set(d.got.map(r => r.key)).size >= n3)
  await sleep(300)
  await d.consumer.disconnect()
  const seen = new Set(d.got.map(r => r.key))
  for (let i = n1 + n2; i < n1 + n2 + n3; i++) if (!seen.has(keyOf(topic, i))) fail(`new member skipped ${keyOf(topic, i)}`)
  const old = d.got.filter(r => indexOf(topic, r.key) < n1 + n2).length
  if (old > 0) fail(`new member re-read ${old} committed records`)
  await admin.disconnect()
}

async function adminOps () {
  const topic = 'kafkajs-admin'
  const admin = kafka.admin()
  await admin.connect()
  const spec = { topic, numPartitions: 3, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }
  if (await admin.createTopics({ topics: [spec], waitForLeaders: true }) !== true) fail('create: did not report created')
  if (await admin.createTopics({ topics: [spec] }) !== false) fail('second create: want false (exists)')
  if (!(await admin.listTopics()).includes(topic)) fail('list: topic missing')
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  if (md.topics.length !== 1 || md.topics[0].name !== topic || md.topics[0].partitions.length !== 3) fail(`metadata: ${JSON.stringify(md)}`)
  const cfg = await admin.describeConfigs({ includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }] })
  const r = cfg.resources[0]
  if (r.errorCode !== 0 || r.configEntries.length !== 1 || r.configEntries[0].configName !== 'retention.ms' ||
    r.configEntries[0].configValue !== '3600000') fail(`describe configs: ${JSON.stringify(r)}`)
  const cluster = await admin.describeCluster()
  if (cluster.brokers.length === 0) fail('describe cluster: no brokers')
  await admin.deleteTopics({ topics: [topic] })
  if ((await admin.listTopics()).includes(topic)) fail('list after delete: topic still there')
  // kafkajs retries UNKNOWN_TOPIC_OR_PARTITION; a client without retries
  // shows the broker's answer directly.
  const once = new Kafka({ clientId: 'compat-kafkajs', brokers: [bootstrap], logLevel: logLevel.NOTHING,
    retry: { retries: 0 } }).admin()
  await once.connect()
  try {
    await once.deleteTopics({ topics: [topic] })
    fail('second delete succeeded')
  } catch (e) {
    const t = e.type || (e.cause && e.cause.type)
    if (t !== 'UNKNOWN_TOPIC_OR_PARTITION') fail(`second delete: ${t} ${e.message}, want UNKNOWN_TOPIC_OR_PARTITION`)
  }
  await once.disconnect()
  await admin.disconnect()
}

// saslCheck (SASL, issue 14): the logged-in client produces and reads
// back; the same mechanism with a wrong password is refused with
// SASL_AUTHENTICATION_FAILED (kafkajs names the error KafkaJSSASLAuthenticationError).
async function saslCheck () {
  const topic = 'kafkajs-sasl-' + sasl.mechanism
  await produce(topic, CompressionTypes.None, 0, 20)
  const hw = await highWatermarks(topic)
  const total = Object.values(hw).reduce((a, b) => a + b, 0)
  if (total !== 20) fail(`high watermarks sum to ${total}, want 20`)
  // A fresh object: kafkajs keeps the one it was given (and the
  // spread of it still logged in with the right password).
  const wrong = saslOf(process.env.KAFKAJS_SASL)
  wrong.password += '-wrong'
  const bad = new Kafka({ clientId: 'compat-kafkajs-bad', brokers: [bootstrap], logLevel: logLevel.NOTHING,
    retry: { retries: 0 }, sasl: wrong }).admin()
  try {
    await bad.connect()
    await bad.listTopics()
    fail('a wrong password connected')
  } catch (e) {
    if (e.name !== 'KafkaJSSASLAuthenticationError') fail(`wrong password: ${e.name} ${e.message}, want KafkaJSSASLAuthenticationError`)
  }
  await bad.disconnect()
}

// Transactions (issue 15). txnProducer is kafkajs's transactional
// producer as its documentation configures it.
const txnProducer = transactionalId => kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })

// readAll reads topic from the start with a fresh group (kafkajs has no
// assign()), with the isolation level given, until want records arrived.
async function readAll (topic, groupId, readUncommitted, want) {
  const got = []
  const c = kafka.consumer({ groupId, readUncommitted, maxWaitTimeInMs: 200, sessionTimeout: 10000, heartbeatInterval: 300 })
  await c.connect()
  await c.subscribe({ topic, fromBeginning: true })
  await c.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      got.push({ partition, offset: Number(message.offset), key: message.key ? message.key.toString() : null, value: message.value.toString() })
    }
  })
  try {
    await waitFor(`${topic}: ${want} records (readUncommitted=${readUncommitted})`, () => got.length >= want)
  } finally {
    await c.disconnect()
  }
  return got
}

// expectOffsets compares value@offset per partition with want.
function expectOffsets (what, got, want) {
  const fmt = rs => rs.slice().sort((a, b) => a.partition - b.partition || a.offset - b.offset).map(r => `${r.partition}:${r.value}@${r.offset}`).join(' ')
  const g = fmt(got)
  if (g !== want.join(' ')) fail(`${what}:\n got ${g}\nwant ${want.join(' ')}`)
}

async function sendTxn (producer, topic, prefix, n, partitions, commit) {
  const txn = await producer.transaction()
  try {
    for (let i = 0; i < n; i++) {
      await txn.send({ topic, acks: -1, messages: [{ key: String(i), value: `${prefix}-${i}`, partition: i % partitions }] })
    }
  } catch (e) {
    await txn.abort()
    throw e
  }
  if (commit) await txn.commit()
  else await txn.abort()
}

// txn: commit, abort, commit over two partitions; readUncommitted:false
// reads exactly the committed records at their offsets (5 committed,
// marker, 3 aborted, marker, 2 committed, marker per partition),
// readUncommitted:true all of them; then consume-transform-produce with
// sendOffsets (aborted round leaves the group's offsets unset, committed
// round moves them to the high watermarks), fencing by a second
// producer with the same transactionalId, and the coordinator's abort of
// a transaction past its timeout. The Go test then reads the topics with
// franz-go read_committed.
async function txnCheck () {
  const admin = kafka.admin()
  await admin.connect()
  const topic = 'kafkajs-txn'
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }, { topic: 'kafkajs-ctp-in', numPartitions: 2 },
    { topic: 'kafkajs-ctp-out', numPartitions: 2 }, { topic: 'kafkajs-fence', numPartitions: 1 },
    { topic: 'kafkajs-timeout', numPartitions: 1 }], waitForLeaders: true })

  const p = txnProducer('kafkajs-txn-1')
  await p.connect()
  await sendTxn(p, topic, 'c1', 10, 2, true)
  await sendTxn(p, topic, 'a2', 6, 2, false)
  await sendTxn(p, topic, 'c3', 4, 2, true)
  const committed = []; const all = []
  for (let part = 0; part < 2; part++) {
    for (let i = part; i < 10; i += 2) { committed.push(`${part}:c1-${i}@${i >> 1}`); all.push(`${part}:c1-${i}@${i >> 1}`) }
    for (let i = part; i < 6; i += 2) all.push(`${part}:a2-${i}@${6 + (i >> 1)}`)
    for (let i = part; i < 4; i += 2) { committed.push(`${part}:c3-${i}@${10 + (i >> 1)}`); all.push(`${part}:c3-${i}@${10 + (i >> 1)}`) }
  }
  expectOffsets('readUncommitted: false', await readAll(topic, 'kafkajs-txn-rc', false, committed.length), committed)
  expectOffsets('readUncommitted: true', await readAll(topic, 'kafkajs-txn-ru', true, all.length), all)
  const hw = await highWatermarks(topic)
  if (hw[0] !== 13 || hw[1] !== 13) fail(`high watermarks ${JSON.stringify(hw)}, want 13 each (10 records, 3 markers)`)
  console.log('txn: commit/abort/commit read back with both isolation levels')

  // Consume-transform-produce: the group's offsets move with the
  // committed transaction only.
  const n = 20
  await produce('kafkajs-ctp-in', CompressionTypes.None, 0, n)
  const group = 'kafkajs-ctp'
  const round = async commit => {
    const got = []
    const c = kafka.consumer({ groupId: group, readUncommitted: false, maxWaitTimeInMs: 200, sessionTimeout: 10000, heartbeatInterval: 300 })
    await c.connect()
    await c.subscribe({ topic: 'kafkajs-ctp-in', fromBeginning: true })
    await c.run({ autoCommit: false, eachMessage: async ({ partition, message }) => { got.push({ partition, offset: Number(message.offset), key: message.key.toString() }) } })
    try {
      await waitFor(`ctp round commit=${commit}: ${n} input records`, () => got.length >= n)
      const txn = await p.transaction()
      const next = {}
      for (const m of got) {
        await txn.send({ topic: 'kafkajs-ctp-out', acks: -1, messages: [{ key: m.key, value: 'out:' + m.key, partition: m.partition }] })
        next[m.partition] = Math.max(next[m.partition] || 0, m.offset + 1)
      }
      await txn.sendOffsets({ consumerGroupId: group,
        topics: [{ topic: 'kafkajs-ctp-in', partitions: Object.entries(next).map(([partition, o]) => ({ partition: Number(partition), offset: String(o) })) }] })
      if (commit) await txn.commit()
      else await txn.abort()
    } finally {
      await c.disconnect()
    }
    if (new Set(got.map(m => m.key)).size !== n) fail(`ctp round commit=${commit}: ${new Set(got.map(m => m.key)).size} distinct keys, want ${n}`)
  }
  const groupOffsets = async () => {
    const o = {}
    for (const x of (await admin.fetchOffsets({ groupId: group, topics: ['kafkajs-ctp-in'] }))[0].partitions) o[x.partition] = Number(x.offset)
    return o
  }
  await round(false)
  let o = await groupOffsets()
  if (o[0] !== -1 || o[1] !== -1) fail(`group offsets after the aborted transaction: ${JSON.stringify(o)}, want -1 (none)`)
  await round(true)
  o = await groupOffsets()
  const inHw = await highWatermarks('kafkajs-ctp-in')
  for (const part of [0, 1]) if (o[part] !== inHw[part]) fail(`group offset of kafkajs-ctp-in[${part}] = ${o[part]}, want the high watermark ${inHw[part]}`)
  const out = await readAll('kafkajs-ctp-out', 'kafkajs-ctp-check', false, n)
  const seen = {}
  for (const r of out) seen[r.value] = (seen[r.value] || 0) + 1
  for (let i = 0; i < n; i++) if (seen['out:' + keyOf('kafkajs-ctp-in', i)] !== 1) fail(`read committed output holds out:${keyOf('kafkajs-ctp-in', i)} ${seen['out:' + keyOf('kafkajs-ctp-in', i)] || 0} times`)
  console.log(`txn: sendOffsets aborted then committed; group offsets ${JSON.stringify(o)}`)
  await p.disconnect()

  // Fencing: a second instance's InitProducerId aborts the first's open
  // transaction; the first's commit is refused. kafkajs 2.2.4 sends
  // EndTxn v1, which has no PRODUCER_FENCED: Kafka (and Sluice) answer
  // INVALID_PRODUCER_EPOCH.
  const z = txnProducer('kafkajs-fence-txn')
  await z.connect()
  const zt = await z.transaction()
  await zt.send({ topic: 'kafkajs-fence', acks: -1, messages: [{ value: 'zombie' }] })
  // kafkajs's connect() asks for a non-transactional producer id; the
  // transactional InitProducerId (the fencing) is sent by transaction().
  const p2 = txnProducer('kafkajs-fence-txn')
  await p2.connect()
  const t2 = await p2.transaction()
  try {
    await zt.commit()
    fail('the fenced producer committed')
  } catch (e) {
    const t = e.type || (e.cause && e.cause.type)
    if (t !== 'INVALID_PRODUCER_EPOCH') fail(`fenced commit: ${e.name} ${t} ${e.message}, want INVALID_PRODUCER_EPOCH`)
    else console.log(`txn: fenced producer's commit refused: ${t}`)
  }
  await t2.send({ topic: 'kafkajs-fence', acks: -1, messages: [{ value: 'after-0' }] })
  await t2.commit()
  expectOffsets('fenced topic, readUncommitted: false', await readAll('kafkajs-fence', 'kafkajs-fence-rc', false, 1), ['0:after-0@2'])
  await z.disconnect().catch(() => {})
  await p2.disconnect()

  // Timeout: a transaction with transactionTimeout 1000 ms left open is
  // aborted by the coordinator. A plain record written after it (offset
  // 1) reaches a readUncommitted: false consumer only once the last
  // stable offset passes the abort, and the timed-out record (0) never
  // does; the late commit is refused.
  const slow = kafka.producer({ transactionalId: 'kafkajs-slow-txn', idempotent: true, maxInFlightRequests: 1, transactionTimeout: 1000 })
  await slow.connect()
  const st = await slow.transaction()
  await st.send({ topic: 'kafkajs-timeout', acks: -1, messages: [{ value: 'late', partition: 0 }] })
  const plain = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await plain.connect()
  await plain.send({ topic: 'kafkajs-timeout', acks: -1, messages: [{ value: 'plain-after', partition: 0 }] })
  await plain.disconnect()
  expectOffsets('timed-out transaction, readUncommitted: false', await readAll('kafkajs-timeout', 'kafkajs-timeout-rc', false, 1), ['0:plain-after@1'])
  try {
    await st.commit()
    fail('the commit of a timed-out transaction succeeded')
  } catch (e) {
    const t = e.type || (e.cause && e.cause.type)
    if (t !== 'INVALID_PRODUCER_EPOCH') fail(`commit after the timeout: ${e.name} ${t} ${e.message}, want INVALID_PRODUCER_EPOCH`)
    else console.log(`txn: commit after the timeout abort refused: ${t}`)
  }
  await slow.disconnect().catch(() => {})
  await admin.disconnect()
}

const modes = { codecs, group, admin: adminOps, sasl: saslCheck, txn: txnCheck }
if (!modes[mode]) {
  console.log('usage: node compat.js <bootstrap> codecs|group|admin|sasl|txn')
  process.exit(2)
}
modes[mode]().then(() => {
  if (failures > 0) { console.log(`${failures} failures`); process.exit(1) }
  console.log('PASS')
  process.exit(0)
}, e => {
  console.log('ERROR: ' + (e.stack || e))
  process.exit(1)
})
