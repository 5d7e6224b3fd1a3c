// kafkajs over TLS against a Sluice agent, run by compat/tls_test.go:
// node tls.js <bootstrap> <ca.pem> [<cert.pem> <key.pem>]
// Produces 300 keyed records (idempotent, acks=-1) to a fresh topic over
// TLS (mutual TLS with a certificate and key), consumes them back and
// compares them exactly. Prints PASS on success; exits non-zero otherwise.
'use strict'
const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

const [bootstrap, caFile, certFile, keyFile] = process.argv.slice(2)
const ssl = { ca: [fs.readFileSync(caFile, 'utf-8')] }
if (certFile) {
  ssl.cert = fs.readFileSync(certFile, 'utf-8')
  ssl.key = fs.readFileSync(keyFile, 'utf-8')
}
const kafka = new Kafka({ clientId: 'compat-kafkajs-tls', brokers: [bootstrap], ssl, logLevel: logLevel.ERROR,
  retry: { retries: 10, initialRetryTime: 100 } })
const N = 300
const topic = 'kafkajs-tls-' + Date.now()

async function main () {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true })
  await producer.connect()
  const messages = []
  for (let i = 0; i < N; i++) messages.push({ key: `k${i}`, value: `v${i}`, partition: 0 })
  for (let j = 0; j < N; j += 50) await producer.send({ topic, acks: -1, messages: messages.slice(j, j + 50) })
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: 'g-' + topic })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const got = []
  await consumer.run({ eachMessage: async ({ message }) => { got.push([message.key.toString(), message.value.toString()]) } })
  const deadline = Date.now() + 60000
  while (got.length < N && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  await consumer.disconnect()
  if (got.length !== N) throw new Error(`consumed ${got.length} records, want ${N}`)
  for (let i = 0; i < N; i++) {
    if (got[i][0] !== `k${i}` || got[i][1] !== `v${i}`) throw new Error(`record ${i} is ${got[i]}`)
  }
  console.log(`ok kafkajs tls ${N} records${certFile ? ' mtls' : ''}`)
  console.log('PASS')
}

main().catch(e => { console.log('FAIL: ' + e.message); process.exit(1) })
