/**
 * hopgate-client: configuration → DTLS session → tunnel → local forwarder.
 */
import { exitOnConfigError } from "./lib/config/build.ts";
import { helpText } from "./lib/config/options.ts";
import { clientOptions, loadClientConfig } from "./lib/config/client_config.ts";
import { VERSION } from "./lib/config/version.ts";

function main(): void {
  let built;
  try {
    built = loadClientConfig({ args: Deno.args, env: Deno.env.toObject() });
  } catch (e) {
    exitOnConfigError(e, "hopgate-client");
  }
  if (built.help) {
    console.log(
      helpText(
        `hopgate-client ${VERSION}: the private side of a HopGate tunnel`,
        "hopgate-client [options]",
        clientOptions,
      ),
    );
    return;
  }
  if (built.version) {
    console.log(`hopgate-client ${VERSION}`);
    return;
  }
  console.error("hopgate-client: the tunnel is not wired yet");
  Deno.exit(1);
}

if (import.meta.main) main();
