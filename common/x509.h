/* SPDX-License-Identifier: Apache-2.0 */
/* Building X.509 certificates (vouchd's CA and server certificates, the load generator's
 * test EK CA): the one helper both need. */
#pragma once

#include <openssl/x509.h>

/* Adds the extension nid with value in OpenSSL's configuration syntax (e.g.
 * "critical,CA:TRUE"), issuer being the certificate that signs cert (cert itself when
 * self-signed; it matters for the authority key identifier). -EINVAL when value does not
 * parse for nid, -EIO when the extension cannot be added. */
int vu_x509_add_ext(X509 *cert, X509 *issuer, int nid, const char *value);
