// The playground: POST the form, read the gateway's server-sent events as they arrive.
const form = document.getElementById("playground-form");
const answer = document.getElementById("answer");
const problem = document.getElementById("playground-error");
const facts = {};
document.querySelectorAll("[data-fact]").forEach((el) => (facts[el.dataset.fact] = el));

function show(name, value) {
  facts[name].textContent = value;
}

function handle(event, started) {
  if (event.error) throw new Error(event.error.message);
  const delta = event.choices && event.choices[0] && event.choices[0].delta;
  if (delta && delta.content) {
    if (!answer.dataset.started) {
      answer.dataset.started = "1";
      show("ttft", Math.round(performance.now() - started) + " ms");
    }
    answer.textContent += delta.content;
  }
  if (event.usage) {
    show("tokens", `${event.usage.prompt_tokens} in · ${event.usage.completion_tokens} out`);
    show("cost", "$" + event.usage.cost);
  }
}

form.addEventListener("submit", async (submit) => {
  submit.preventDefault();
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  answer.textContent = "";
  delete answer.dataset.started;
  problem.hidden = true;
  Object.keys(facts).forEach((name) => show(name, "…"));
  const started = performance.now();
  try {
    const response = await fetch(form.action, { method: "POST", body: new FormData(form) });
    const type = response.headers.get("Content-Type") || "";
    if (!type.startsWith("text/event-stream")) {
      const body = await response.json().catch(() => null);
      throw new Error(body && body.error ? body.error.message : `The gateway answered ${response.status}.`);
    }
    show("provider", `${response.headers.get("X-Gateway-Provider")} · ${response.headers.get("X-Gateway-Model")}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const events = buffer.split("\n\n");
      buffer = events.pop();
      for (const raw of events) {
        const data = raw.replace(/^data: /, "");
        if (data && data !== "[DONE]") handle(JSON.parse(data), started);
      }
    }
    show("latency", Math.round(performance.now() - started) + " ms");
    answer.dataset.done = "1";
  } catch (error) {
    problem.textContent = error.message;
    problem.hidden = false;
  } finally {
    button.disabled = false;
  }
});
