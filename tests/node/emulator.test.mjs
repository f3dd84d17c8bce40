// The emulator, driven by the official Alibaba Cloud Node.js SDK clients (a second official client,
// of another language, beside the Python SDK the rest of the suite uses). tests/node/test_node_sdk.py
// starts an emulator on loopback and runs this file with `node --test`; the emulator's address and
// root key arrive in RAMFLOW_NODE_* variables.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';

import * as ims from '@alicloud/ims20190815';
import { $OpenApiUtil } from '@alicloud/openapi-core';
import * as ram from '@alicloud/ram20150501';
import * as rm from '@alicloud/resourcemanager20200331';
import * as sts from '@alicloud/sts20150401';

const endpoint = required('RAMFLOW_NODE_ENDPOINT'); // host:port
const account = required('RAMFLOW_NODE_ACCOUNT_ID');
const rootKey = { accessKeyId: required('RAMFLOW_NODE_KEY_ID'), accessKeySecret: required('RAMFLOW_NODE_KEY_SECRET') };

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through tests/node/test_node_sdk.py`);
  return value;
}

// The generated packages export the client as their default (CommonJS `exports.default`).
const client = (mod, credentials) =>
  new (mod.default.default ?? mod.default)(
    new $OpenApiUtil.Config({ ...credentials, endpoint, protocol: 'http', regionId: 'cn-hangzhou' }),
  );

const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;

async function refusal(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('the call was expected to be refused');
}

const root = {
  ram: client(ram, rootKey),
  sts: client(sts, rootKey),
  ims: client(ims, rootKey),
  rm: client(rm, rootKey),
};

const trustAccount = JSON.stringify({
  Version: '1',
  Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { RAM: [`acs:ram::${account}:root`] } }],
});

async function newUser(name, { mayAssume }) {
  await root.ram.createUser(new ram.CreateUserRequest({ userName: name }));
  if (mayAssume) {
    await root.ram.attachPolicyToUser(
      new ram.AttachPolicyToUserRequest({ policyType: 'System', policyName: 'AliyunSTSAssumeRoleAccess', userName: name }),
    );
  }
  const key = (await root.ram.createAccessKey(new ram.CreateAccessKeyRequest({ userName: name }))).body.accessKey;
  return { accessKeyId: key.accessKeyId, accessKeySecret: key.accessKeySecret };
}

async function newRole(name) {
  const body = (
    await root.ram.createRole(new ram.CreateRoleRequest({ roleName: name, assumeRolePolicyDocument: trustAccount }))
  ).body;
  return body.role.arn;
}

describe('basic calls', () => {
  test('GetCallerIdentity names the root account', async () => {
    const body = (await root.sts.getCallerIdentity()).body;
    assert.equal(body.accountId, account);
    assert.equal(body.identityType, 'Account');
    assert.equal(body.arn, `acs:ram::${account}:root`);
  });

  test('a RAM user is created, read back and tagged through IMS', async () => {
    const name = unique('node-user');
    const created = (await root.ram.createUser(new ram.CreateUserRequest({ userName: name, displayName: 'Node' })))
      .body.user;
    assert.equal(created.userName, name);
    const got = (await root.ram.getUser(new ram.GetUserRequest({ userName: name }))).body.user;
    assert.equal(got.userId, created.userId);

    await root.ims.tagResources(
      new ims.TagResourcesRequest({
        resourceType: 'user',
        resourcePrincipalName: [`${name}@${(await root.ims.getDefaultDomain()).body.defaultDomainName}`],
        tag: [new ims.TagResourcesRequestTag({ key: 'managed-by', value: 'ramflow' })],
      }),
    );
    const tags = (
      await root.ims.listTagResources(
        new ims.ListTagResourcesRequest({ resourceType: 'user', resourceId: [created.userId] }),
      )
    ).body.tagResources.tagResource;
    assert.deepEqual(
      tags.map((t) => [t.tagKey, t.tagValue]),
      [['managed-by', 'ramflow']],
    );
  });

  test('errors surface with the API code and HTTP status', async () => {
    const err = await refusal(root.ram.getUser(new ram.GetUserRequest({ userName: unique('nobody') })));
    assert.equal(err.code, 'EntityNotExist.User');
    assert.equal(err.statusCode, 404);
    assert.equal(err.data.Code, 'EntityNotExist.User');
  });

  test('a wrong secret is refused as SignatureDoesNotMatch', async () => {
    const forged = client(sts, { accessKeyId: rootKey.accessKeyId, accessKeySecret: 'not-the-secret' });
    const err = await refusal(forged.getCallerIdentity());
    assert.equal(err.code, 'SignatureDoesNotMatch');
  });
});

describe('AssumeRole', () => {
  let roleArn;
  let roleName;
  before(async () => {
    roleName = unique('node-reader');
    roleArn = await newRole(roleName);
  });

  test("AssumedRoleUser.Arn is role/<role>/<session>; the session's caller ARN is assumed-role/", async () => {
    const app = client(sts, await newUser(unique('node-app'), { mayAssume: true }));
    const body = (await app.assumeRole(new sts.AssumeRoleRequest({ roleArn, roleSessionName: 'alice' }))).body;
    const role = roleName.toLowerCase();
    assert.equal(body.assumedRoleUser.arn, `acs:ram::${account}:role/${role}/alice`);
    assert.match(body.assumedRoleUser.assumedRoleId, /^\d+:alice$/);
    assert.match(body.credentials.accessKeyId, /^STS\./);

    const creds = body.credentials;
    const session = client(sts, {
      accessKeyId: creds.accessKeyId,
      accessKeySecret: creds.accessKeySecret,
      securityToken: creds.securityToken,
    });
    const identity = (await session.getCallerIdentity()).body;
    assert.equal(identity.identityType, 'AssumedRoleUser');
    assert.equal(identity.arn, `acs:ram::${account}:assumed-role/${role}/alice`);
  });

  test('a RAM user without sts:AssumeRole permission gets NoPermission (403)', async () => {
    const name = unique('node-bare');
    const bare = client(sts, await newUser(name, { mayAssume: false }));
    const err = await refusal(bare.assumeRole(new sts.AssumeRoleRequest({ roleArn, roleSessionName: 'alice' })));
    assert.equal(err.code, 'NoPermission');
    assert.equal(err.statusCode, 403);
    assert.equal(err.data.Message, 'You are not authorized to do this action. You should be authorized by RAM.');

    await root.ram.attachPolicyToUser(
      new ram.AttachPolicyToUserRequest({ policyType: 'System', policyName: 'AliyunSTSAssumeRoleAccess', userName: name }),
    );
    const body = (await bare.assumeRole(new sts.AssumeRoleRequest({ roleArn, roleSessionName: 'alice' }))).body;
    assert.match(body.credentials.accessKeyId, /^STS\./);
  });

  test('the root account may not assume a role', async () => {
    const err = await refusal(root.sts.assumeRole(new sts.AssumeRoleRequest({ roleArn, roleSessionName: 'alice' })));
    assert.equal(err.code, 'NoPermission');
    assert.equal(err.statusCode, 403);
  });
});

describe('resource groups', () => {
  test('a new group answers Creating, also per region, then turns OK', async () => {
    const name = unique('node-rg');
    const created = (
      await root.rm.createResourceGroup(new rm.CreateResourceGroupRequest({ name, displayName: 'Node' }))
    ).body.resourceGroup;
    assert.equal(created.status, 'Creating');
    const regions = created.regionStatuses.regionStatus;
    assert.ok(regions.length > 0);
    assert.ok(regions.every((r) => r.status === 'Creating'));

    const deadline = Date.now() + 10_000;
    let group;
    for (;;) {
      group = (await root.rm.getResourceGroup(new rm.GetResourceGroupRequest({ resourceGroupId: created.id }))).body
        .resourceGroup;
      if (group.status !== 'Creating' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(group.status, 'OK');
    assert.ok(group.regionStatuses.regionStatus.every((r) => r.status === 'OK'));
  });
});
