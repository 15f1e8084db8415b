// Preloaded into osls by `make deploy-check` (NODE_OPTIONS=--require ...): the offline packaging
// check must never reach AWS, and osls 3 resolves *every* `${ssm:...}` variable in serverless.yml
// (the dev and prod ones alike, whatever --stage says) through the AWS SDK v2 before it packages.
//
// Here every AWS SDK v2 request fails locally, without credentials, DNS or sockets:
//   - SSM GetParameter answers ParameterNotFound, so osls takes the default written after the comma
//     (`${ssm:/gamebackend/dev/jwt-secret, 'set-me-in-ssm'}` -> 'set-me-in-ssm'), the same path a
//     deploy takes when the parameter does not exist;
//   - CloudFormation DescribeStacks answers "does not exist", as before a first deploy (osls asks it
//     while packaging a service that has `layers:`, to reuse an already uploaded layer zip);
//   - any other call is refused with an error naming it, so a new AWS lookup in serverless.yml
//     (a `${cf:...}`, `${s3:...}`, `${aws:accountId}`) makes the check fail loudly instead of hanging.
// AWS SDK v3 clients are kept off the network by AWS_ENDPOINT_URL (a closed loopback port) in the
// Makefile. Nothing here is used by a real `osls deploy`.
'use strict';

const Module = require('module');

const PATCHED = Symbol.for('gamebackend.offlineAws');

function refusal(request) {
  const service = request.service && request.service.serviceIdentifier;
  const operation = request.operation;
  if (service === 'ssm' && operation === 'getParameter') {
    const name = request.params && request.params.Name;
    return Object.assign(new Error(`offline deploy-check: SSM parameter ${name} not looked up`), {
      code: 'ParameterNotFound',
      statusCode: 400,
      retryable: false,
    });
  }
  if (service === 'cloudformation' && operation === 'describeStacks') {
    // Asked when serverless.yml has `layers:` (is this layer's zip already uploaded?): answer as
    // before a first deploy.
    const name = request.params && request.params.StackName;
    return Object.assign(new Error(`Stack with id ${name} does not exist`), {
      code: 'ValidationError',
      statusCode: 400,
      retryable: false,
    });
  }
  return Object.assign(
    new Error(`offline deploy-check: refused AWS call ${service}.${operation} (no AWS access here)`),
    { code: 'OfflineDeployCheck', statusCode: 400, retryable: false }
  );
}

function patch(AWS) {
  if (!AWS || !AWS.Request || AWS.Request.prototype[PATCHED]) return;
  const proto = AWS.Request.prototype;
  proto.promise = function promise() {
    return Promise.reject(refusal(this));
  };
  proto.send = function send(callback) {
    const error = refusal(this);
    if (callback) process.nextTick(() => callback(error, null));
    return this;
  };
  proto[PATCHED] = true;
  // osls may call AWS.config.setPromisesDependency(), which re-installs promise(): keep ours.
  const addPromises = AWS.Request.addPromisesToClass;
  AWS.Request.addPromisesToClass = function addPromisesToClass(...args) {
    addPromises.apply(this, args);
    this.prototype.promise = proto.promise;
  };
}

const load = Module._load;
Module._load = function _load(request, parent, isMain) {
  const exported = load.call(this, request, parent, isMain);
  if (request === 'aws-sdk' || request === 'aws-sdk/global') patch(exported);
  return exported;
};
