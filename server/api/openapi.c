/*
 * openapi.c - GET /openapi.yaml: the API's OpenAPI document (openapi.yaml at the top of the
 * repository), built into the binary by cmake/Embed.cmake. No authentication: it describes the
 * API, not anything stored. Its ETag is a digest of the document, so a client that has it gets a
 * 304 until the server is upgraded.
 */
#include "server/api/api.h"

#include <pthread.h>
#include <sodium.h>

extern const unsigned char sx_openapi_yaml[];
extern const size_t sx_openapi_yaml_len;

static pthread_once_t etag_once = PTHREAD_ONCE_INIT;
static sx_api_etag_buf etag;

static void etag_init(void)
{
    uint8_t tag[SX_SECRETS_TAG_LEN];
    crypto_generichash(tag, sizeof(tag), sx_openapi_yaml, sx_openapi_yaml_len, NULL, 0);
    sx_api_etag_of_tag(tag, &etag);
}

void sx_api_openapi(sx_request *r)
{
    pthread_once(&etag_once, etag_init);
    if (sx_api_not_modified(r, &etag))
        return;
    sx_api_etag_add(r, &etag);
    /* Public and the same for everyone: caches may keep it, asking again with the ETag. */
    sx_send_body(r, 200, h2o_iovec_init(H2O_STRLIT("application/yaml")), h2o_iovec_init(H2O_STRLIT("no-cache")),
                 h2o_iovec_init(sx_openapi_yaml, sx_openapi_yaml_len));
}
