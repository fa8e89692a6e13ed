// Drive the @upstash/kafka SDK's producer, unchanged, against our proxy.
// Usage: node produce.mjs URL USER PASS TOPIC
// Prints one JSON line: {"one": <produce result>, "many": <produceMany result>, "denied": <error>}
import { Kafka } from "@upstash/kafka";

const [url, username, password, topic] = process.argv.slice(2);
const kafka = new Kafka({ url, username, password });
const p = kafka.producer();

const one = await p.produce(topic, "hello from the sdk", {
  key: "k1",
  headers: [{ key: "h1", value: "v1" }],
});
const many = await p.produceMany([
  { topic, value: "m1", partition: 0 },
  { topic, value: { json: true }, key: "k2", timestamp: 1642628041000 },
]);
let denied = null;
try {
  const bad = new Kafka({ url, username, password: "wrong" }).producer();
  // The SDK retries failures with back-off; one attempt is enough to see the error.
  bad.client.request = ((orig) => (m, req) => orig.call(bad.client, m, { ...req, retries: 0 }))(bad.client.request);
  await bad.produce(topic, "never");
} catch (e) {
  denied = { name: e.name, status: e.status, error: e.error };
}
console.log(JSON.stringify({ one, many, denied }));
