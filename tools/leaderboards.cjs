// Hands serverless.yml's `custom.leaderboards` (the boards, as data: backend/game/boards.py) to every
// function as the environment variable LEADERBOARDS, a JSON string: CloudFormation takes only strings as
// environment values, and the framework has no variable that turns a mapping into JSON. The local
// runtime does the same when it reads serverless.yml (local/slsconfig.py), so both run one declaration.
//
// The functions validate the declaration when they first read it; this checks only its outline, so that
// a deploy with no boards at all fails here instead of in every function.
"use strict";

const NAME = "LEADERBOARDS";

function encode(custom) {
  const spec = custom && custom.leaderboards;
  if (!spec || typeof spec !== "object" || !spec.boards || !spec.periods) {
    throw new Error("serverless.yml: custom.leaderboards needs `periods` and `boards` (docs/data-model.md)");
  }
  return JSON.stringify(spec);
}

class LeaderboardsPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    const inject = () => this.inject();
    this.hooks = {
      "before:package:initialize": inject,
      "before:deploy:function:initialize": inject,
    };
  }

  inject() {
    const service = this.serverless.service;
    service.provider.environment = { ...(service.provider.environment || {}), [NAME]: encode(service.custom) };
  }
}

module.exports = LeaderboardsPlugin;
module.exports.encode = encode;
